"""Pull a blocking stream of ``(time, raw)`` pairs from a worker thread, one batch ahead.

Generating camera frames (JPEG encoding) and reading recordings (disk) must
stay off the event loop thread, yet a hand-off per message would cost more
than the message. So a worker thread fills batches of a few hundred messages
(bounded in bytes too, for camera frames) while the loop sends the previous
one.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

Item = tuple[float, bytes]

BATCH = 256
BATCH_BYTES = 4 << 20


def _take(iterator: Iterator[Item], size: int, max_bytes: int) -> list[Item]:
    batch: list[Item] = []
    total = 0
    for item in itertools.islice(iterator, size):
        batch.append(item)
        total += len(item[1])
        if total >= max_bytes:
            break
    return batch


async def batches(
    iterator: Iterator[Item], *, size: int = BATCH, max_bytes: int = BATCH_BYTES
) -> AsyncGenerator[list[Item]]:
    """Yield lists of items; the next list is built in a thread while the caller uses this one.

    When the caller stops early (``break``, cancellation), the batch being built
    is awaited, then the iterator is closed, so files a reader holds are closed
    and no thread keeps running a generator nobody owns.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuecap-pump")
    pending: Future[list[Item]] | None = executor.submit(_take, iterator, size, max_bytes)
    try:
        while pending is not None:
            batch = await asyncio.wrap_future(pending)
            exhausted = not batch or (
                len(batch) < size and sum(len(r) for _, r in batch) < max_bytes
            )
            pending = None if exhausted else executor.submit(_take, iterator, size, max_bytes)
            if batch:
                yield batch
    finally:
        if pending is not None:
            pending.cancel()
            if not pending.done():
                # Still running in the thread: let it finish before closing its generator.
                await asyncio.shield(asyncio.wrap_future(pending))
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        executor.shutdown(wait=False)
