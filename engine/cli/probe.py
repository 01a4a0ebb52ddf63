"""``cuecap check --probe``: try every source and camera once, now, and say what happened.

``check`` proves the files mean something; the probe proves the machine can
do it: each source is opened and read until its first message (and, for a
source a stream camera reads, its first camera frame), each camera takes one
shot with a single try, kept in memory and never written. Everything runs at
once and is bounded by ``timeout`` per source and per shot, so a probe of a
dead network ends in about ``timeout`` seconds, not minutes of retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from engine.core.clock import SYSTEM_CLOCK
from engine.core.frame import Frame
from engine.rules.loader import RuleSet


@dataclass(frozen=True)
class ProbeResult:
    """One line of the probe's report."""

    kind: str  # "source" or "camera"
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"probe {self.kind} {self.name}: {'ok' if self.ok else 'FAILED'}, {self.detail}"


def _image_sources(rules: RuleSet) -> set[str]:
    from engine.shots.config import StreamCameraConfig

    return {c.source for c in rules.cameras.values() if isinstance(c, StreamCameraConfig)}


async def probe_source(
    name: str, config: Any, needs_image: bool, cache: Any, timeout: float
) -> ProbeResult:
    """Read source ``name`` until its first message (and camera frame), feeding ``cache``.

    ``cuecap shot`` uses it too: a stream camera outside a running engine
    takes the first camera frame its source sends.
    """
    from engine.runtime.sources import build_source

    source = build_source(name, config, SYSTEM_CLOCK)
    started = time.monotonic()
    first: Frame | None = None
    last_gap = ""
    try:
        async with asyncio.timeout(timeout):
            async for item in source:
                if not isinstance(item, Frame):
                    last_gap = item.reason
                    continue
                cache.update(item)
                if first is None:
                    first = item
                if not needs_image or cache.latest(name) is not None:
                    break
    except TimeoutError:
        pass
    except Exception as exc:  # any failure of a source is the probe's answer
        return ProbeResult("source", name, False, f"{type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            await source.aclose()
    took = time.monotonic() - started
    if first is None:
        why = last_gap or "; ".join(source.stats.errors[-1:]) or "nothing received"
        return ProbeResult("source", name, False, f"no message in {timeout:g} s ({why})")
    detail = f"first message ({first.kind}) after {took:.2f} s"
    if needs_image and cache.latest(name) is None:
        return ProbeResult("source", name, False, f"{detail}, but no camera frame in {timeout:g} s")
    return ProbeResult("source", name, True, detail)


async def _probe_cameras(rules: RuleSet, cache: Any, timeout: float) -> list[ProbeResult]:
    from engine.shots.service import ShotService
    from engine.shots.status import ShotFailed

    settings = rules.shot_settings().model_copy(
        update={"retention": None, "max_tries": 1, "timeout_sec": timeout, "buffer_ts": 0}
    )
    cameras = {
        name: config.model_copy(update={"tries": None, "timeout": None})
        for name, config in rules.cameras.items()
    }
    results = []
    async with ShotService(cameras, settings, frame_cache=cache) as service:

        async def one(name: str) -> ProbeResult:
            started = time.monotonic()
            try:
                data = await service.grab(name)
            except ShotFailed as exc:
                return ProbeResult("camera", name, False, exc.reason)
            took = time.monotonic() - started
            return ProbeResult("camera", name, True, f"{len(data)} bytes of JPEG in {took:.2f} s")

        results = list(await asyncio.gather(*(one(n) for n in cameras)))
    return results


async def probe(rules: RuleSet, timeout: float) -> list[ProbeResult]:
    """Every source, then every camera (stream cameras use what the sources just received)."""
    from engine.shots.frame_cache import FrameCache

    cache = FrameCache()
    images = _image_sources(rules)
    sources = await asyncio.gather(
        *(
            probe_source(name, config, name in images, cache, timeout)
            for name, config in rules.sources.items()
        )
    )
    cameras = await _probe_cameras(rules, cache, timeout) if rules.cameras else []
    return [*sources, *cameras]
