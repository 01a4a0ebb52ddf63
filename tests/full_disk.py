"""A disk that fills up, for tests: writes past a size limit fail as on a full disk."""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def full_disk_after(limit: int) -> Iterator[int]:
    """Inside the block, writing a file past ``limit`` bytes fails with EFBIG (``File too large``).

    The process-wide file size limit is what the kernel enforces; its signal is
    ignored so the write returns an error instead of killing the test run.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
