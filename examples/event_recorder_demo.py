"""Capturing three separate logs at different times, as in the EventRecorder docs.

With no ``--uri``, a simulated PurpleDrop server is started on a free local
port, so the demo runs anywhere. Against real hardware:

    python examples/event_recorder_demo.py --uri ws://mcbride-purpledrop:7001

The durations default to the documentation's 10 s capture and 5 s pause;
``--record 2 --pause 1`` makes it quick.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from engine.compat import EventRecorder


@contextlib.contextmanager
def server(uri: str | None) -> Iterator[str]:
    if uri is not None:
        yield uri
        return
    from engine.sim.server import run_sim_in_thread

    with run_sim_in_thread(seed=1, fps=5) as sim:
        print(f"simulated PurpleDrop server at {sim.uri}")
        yield sim.uri


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="websocket server (default: start a simulator)")
    parser.add_argument("--segments", type=int, default=3, help="how many captures")
    parser.add_argument("--record", type=float, default=10.0, help="seconds per capture")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between captures")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for log0.bin...")
    args = parser.parse_args(argv)

    with server(args.uri) as uri:
        rec = EventRecorder(uri)
        # Record three segments
        for i in range(args.segments):
            print(f"Starting capture {i}")
            # Start the recorder and let it capture for a while
            rec.start(args.out / f"log{i}.bin")
            time.sleep(args.record)
            print("Stopping Capture")
            summary = rec.stop()
            if summary is not None:
                print("\n".join(summary.lines()))
            # Capture is now stopped. Wait before moving on to the next
            time.sleep(args.pause)
        rec.close()


if __name__ == "__main__":
    main()
