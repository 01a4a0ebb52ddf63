"""A disk that fills up, for tests: a per-file size limit, or a really small file system."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path


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


@contextlib.contextmanager
def small_file_system(folder: Path, size: int) -> Iterator[Path]:
    """A real file system of ``size`` bytes (a tmpfs) mounted at ``folder``, unmounted after.

    Needs root (mounting); ``can_mount()`` says whether this process may.
    """
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


def fill(folder: Path, leave: int = 0) -> Path:
    """A file taking all the space of ``folder``'s file system but about ``leave`` bytes."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free - leave
    with open(filler, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            f.write(bytes(max(free, 0)))
        if leave == 0:  # to the last byte: the file system's own count may lag a page
            chunk = 65536
            while chunk:
                try:
                    f.write(bytes(chunk))
                except OSError:
                    chunk //= 2
    return filler
