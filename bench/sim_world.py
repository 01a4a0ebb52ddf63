"""Simulator speed: how many seconds of PurpleDrop stream the world makes per real second.

One run, side by side, same seed, same stream:

  camera   30 fps 1024x768 frames, (a) the renderer as shipped (board picture
           cached per grid state, only the counter band encoded per frame and
           spliced in) against (b) a baseline that draws and encodes every
           frame in full, as a straightforward renderer would;
  no camera, background and bursts only: events per second.

    python bench/sim_world.py [--seconds S] [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.sim.render import GridRenderer, View  # noqa: E402
from engine.sim.world import SimWorld  # noqa: E402


class FullRenderer(GridRenderer):
    """The baseline: every frame drawn and encoded from scratch, no cache, no splice."""

    def render(self, view: View, label: str = "") -> bytes:
        image = self._picture(view)
        image.paste(self._band(label), (0, 0))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=self.quality)
        self.frames += 1
        return buf.getvalue()


def run(world: SimWorld, seconds: float) -> tuple[float, int, int]:
    """Real seconds to generate ``seconds`` of stream; events; bytes."""
    began = time.perf_counter()
    events = size = 0
    for _, raw in world.events(1_700_000_000.0, 1_700_000_000.0 + seconds):
        events += 1
        size += len(raw)
    return time.perf_counter() - began, events, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="seconds of stream with the camera on"
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds only")
    args = parser.parse_args(argv)
    seconds = 5.0 if args.quick else args.seconds

    shipped = SimWorld(seed=1, fps=30)
    baseline = SimWorld(seed=1, fps=30, renderer=FullRenderer((1024, 768), 85, seed=1))
    run(shipped, 1.0)  # warm up fonts and caches for both
    run(baseline, 1.0)
    fast, events, size = run(shipped, seconds)
    slow, _, _ = run(baseline, seconds)
    print(
        f"camera 30 fps 1024x768, {seconds:g} s of stream ({events} events, {size / 1e6:.0f} MB):"
    )
    print(f"  (a) shipped  {seconds / fast:8.1f} x real time   {events / fast:9.0f} events/s")
    print(f"  (b) baseline {seconds / slow:8.1f} x real time   {events / slow:9.0f} events/s")
    print(
        f"  ratio (a)/(b): {slow / fast:.1f}x faster; CPU share at 30 fps live: {fast / seconds:.1%}"
    )

    quiet = SimWorld(seed=1, fps=0)
    long = 600.0 if args.quick else 3600.0
    took, events, size = run(quiet, long)
    print(
        f"no camera, {long:g} s of stream: {long / took:.0f} x real time, {events / took:.0f} events/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
