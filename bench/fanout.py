"""A source fanned out over NATS: frames per second from the reading engine to a consumer.

One nats-server (JetStream, 127.0.0.1, a temporary store). Two contenders
move the same N frames (with cuecap's headers) from one connection into the
stream and out on another:

- (a) the bare library loop: nats-py ``publish_async`` of every frame (256 at a
  time, then their acknowledgements), and pull-fetches of 64 until all are read;
- (b) cuecap: the reading engine's ``Publisher`` (a bounded queue, 256 sent
  ahead of their acknowledgements) and a ``type: nats`` source
  (``NatsSource``: an ephemeral pull consumer, gaps, original times).

Small frames (100 B) and ~100 KB camera frames; then the delay a frame takes
from the publisher's queue to the consumer at 100 frames a second.

    python bench/fanout.py [--frames N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
import results  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy  # noqa: E402

from engine.cluster.config import ClusterConfig  # noqa: E402
from engine.cluster.devserver import NatsServer  # noqa: E402
from engine.cluster.fanout import Publisher  # noqa: E402
from engine.cluster.feed import NatsSource  # noqa: E402
from engine.cluster.feedcore import Stamper  # noqa: E402
from engine.cluster.link import Link  # noqa: E402
from engine.cluster.streams import SiteStreams  # noqa: E402
from engine.core.clock import SYSTEM_CLOCK  # noqa: E402
from engine.core.frame import Frame  # noqa: E402


async def bare(server: NatsServer, stream: str, payload: bytes, n: int) -> float:
    """Seconds for the library alone to publish n frames and fetch them all back."""
    nc = await nats.connect(server.url)
    out = await nats.connect(server.url)
    try:
        js, js_out = nc.jetstream(), out.jetstream()
        subject = f"cuecap.bench.feeds.{stream}"
        stamper = Stamper("bare")
        stamper.start(1, time.time())
        sub = await js_out.pull_subscribe(
            subject, stream=f"CUECAP_BENCH_FEED_{stream}",
            config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.NEW),
        )  # fmt: skip
        start = time.perf_counter()
        got = 0

        async def fetch() -> None:
            nonlocal got
            while got < n:
                with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
                    got += len(await sub.fetch(64, timeout=0.05))

        reading = asyncio.ensure_future(fetch())
        window: list[asyncio.Future[object]] = []
        for _ in range(n):  # 256 ahead of their acknowledgements, as the publisher
            headers = stamper.frame(time.time()).headers()
            window.append(await js.publish_async(subject, payload, headers=headers))
            if len(window) == 256:
                await asyncio.gather(*window)
                window.clear()
        await asyncio.gather(*window)
        await reading
        return time.perf_counter() - start
    finally:
        await nc.close()
        await out.close()


async def cuecap(
    reader: Link, consumer: Link, stream: str, payload: bytes, n: int
) -> tuple[float, int]:
    """Seconds for cuecap's publisher and nats source; and the gaps the consumer saw."""
    streams = SiteStreams(reader, SYSTEM_CLOCK)
    await streams.declare(stream)
    publisher = Publisher(reader, reader.names.feed_subject(stream), 1024**3)
    source = NatsSource("bench", consumer, stream, clock=SYSTEM_CLOCK, max_lag=3600)
    got = 0
    done = asyncio.Event()

    async def consume() -> None:
        nonlocal got
        async for item in source:
            if isinstance(item, Frame):
                got += 1
                if got == n:
                    done.set()

    reading = asyncio.ensure_future(consume())
    await asyncio.sleep(0.3)  # the consumer is set up (a live source starts from now)
    publisher.start()
    stamper = Stamper("reader")
    # Epoch 2: the bare run's messages had epoch 1, and the stream keeps ids for a while.
    publisher.put(b"", stamper.start(2, time.time()))
    start = time.perf_counter()
    for i in range(n):
        publisher.put(payload, stamper.frame(time.time()))
        if i % 256 == 0:
            await asyncio.sleep(0)
    await done.wait()
    seconds = time.perf_counter() - start
    await source.aclose()
    reading.cancel()
    await publisher.flush(1.0)
    return seconds, len(source.stats.gaps)


async def delay(reader: Link, consumer: Link, frames: int) -> list[float]:
    """Seconds from a frame's receive time to the consumer, at 100 frames a second."""
    publisher = Publisher(reader, reader.names.feed_subject("delay"), 1024**3)
    streams = SiteStreams(reader, SYSTEM_CLOCK)
    await streams.declare("delay")
    source = NatsSource("delay", consumer, "delay", clock=SYSTEM_CLOCK, max_lag=3600)
    delays: list[float] = []

    async def consume() -> None:
        async for item in source:
            if isinstance(item, Frame):
                delays.append(time.time() - item.time)

    reading = asyncio.ensure_future(consume())
    await asyncio.sleep(0.3)
    publisher.start()
    stamper = Stamper("reader")
    publisher.put(b"", stamper.start(1, time.time()))
    for _ in range(frames):
        publisher.put(b"\x0a\x00", stamper.frame(time.time()))
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    await source.aclose()
    reading.cancel()
    await publisher.flush(1.0)
    return sorted(delays)


async def run(frames: int) -> None:
    print(f"load average {os.getloadavg()[0]:.2f}; {frames} frames per run")
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder)) as server:
        config = ClusterConfig(nats=[server.url], name="bench")
        reader, consumer = Link(config, "reader", now=time.time), Link(config, "c", now=time.time)
        await reader.open()
        await consumer.open()
        try:
            print(f"{'frames':>12} {'bare frames/s':>14} {'cuecap frames/s':>16} {'ratio':>6} gaps")
            for label, size, count in (("100 B", 100, frames), ("100 KB", 100_000, frames // 20)):
                payload = b"\x0a" + os.urandom(size - 1)
                stream = label.replace(" ", "")
                await SiteStreams(reader, SYSTEM_CLOCK).declare(stream)
                bare_s = await bare(server, stream, payload, count)
                ours_s, gaps = await cuecap(reader, consumer, stream, payload, count)
                ratio = bare_s / ours_s
                print(f"{label:>12} {count / bare_s:14.0f} {count / ours_s:16.0f} {ratio:6.2f} "
                      f"{gaps}")  # fmt: skip
                results.report("fanout", f"{label} frames/s", count / ours_s, "frames/s")
                results.report("fanout", f"{label} vs bare", ratio, "x")
            delays = await delay(reader, consumer, 200 if frames >= 5000 else 50)
            p50, p99 = delays[len(delays) // 2], delays[int(len(delays) * 0.99)]
            print(f"delay at 100 frames/s: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
            results.report("fanout", "delay p99", p99 * 1000, "ms", target=100, better="lower")
        finally:
            await reader.close()
            await consumer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    asyncio.run(run(2_000 if args.quick else args.frames))
    return 0


if __name__ == "__main__":
    sys.exit(main())
