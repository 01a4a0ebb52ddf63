"""Steady-state CPU and peak memory of a running engine, against a bare client.

One simulated PurpleDrop (``cuecap sim``: a 30 fps 1024x768 camera plus the
background traffic, about 170 messages/s and 3 MB/s) streams in real time over
loopback. Two programs take the same stream for the same wall time, each in
its own process, measured by the kernel (``wait4``: user + system CPU, peak
RSS):

  bare     a websockets client that only receives (the least any recorder costs)
  cuecap   ``cuecap run`` with a recorder and a 5 s timelapse from the stream
           camera: what a lab leaves running for weeks
  source   ``cuecap run`` with the same source and nothing else: the engine's own
           cost, so the rest of ``cuecap``'s is what the recorder and the
           timelapse do (the bare client writes nothing)

Rounds rotate the three, so a busy machine slows them alike; the ratios are the
medians of the per-round ratios.

With ``--stages`` it also runs ``cuecap run`` once more with each stage of the
recorder timed in place (median microseconds per call while live, and
milliseconds per second), then times the same detector check on the recorded
frames in a hot loop and with the caches evicted before each call: the engine
handles one message per wake-up, so its per-message work runs from cold caches.

    python bench/footprint.py [--seconds S] [--rounds R] [--quick] [--stages]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from harness import free_port, wait_listening

ROOT = Path(__file__).resolve().parent.parent
CUECAP = [sys.executable, "-m", "engine"]

BARE_CLIENT = """
import asyncio, sys
from websockets.asyncio.client import connect

async def main(uri, seconds):
    n = size = 0
    async with connect(uri, max_size=None, compression=None, proxy=None) as ws:
        asyncio.get_running_loop().call_later(seconds, lambda: asyncio.ensure_future(ws.close()))
        async for msg in ws:  # the least a client can do: receive, count
            n += 1
            size += len(msg)
    print(n, size)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""

RULES = """\
settings:
  recordings: {root}/recordings
  shots: {{folder: {root}/shots}}
sources:
  lab: {{type: websocket, url: "{uri}"}}
cameras:
  device: {{type: stream, source: lab}}
recorders:
  moves:
    activity:
      - {{type: message, types: [electrode_state]}}
      - {{type: step, field: active_capacitance.calibrated, delta: 15}}
    pre_roll: 2s
    post_roll: 3s
rules:
  timelapse:
    when: {{type: schedule, every: 5s}}
    do: {{type: shot, cameras: device}}
"""

# Runs ``cuecap run`` with the recorder's stages timed where they run (wall time of
# each call: the process is mostly idle, so a call is rarely preempted).
STAGES = """
import atexit, statistics, sys, time
from time import perf_counter_ns
from engine.recorder.detectors import StepDetector
from engine.recorder.preroll import PreRoll
from engine.recorder.recorder import Recorder
from engine.recording.writer import RecordingWriter
from engine.runtime.core import EngineCore

calls = {}

def timed(cls, name, label):
    inner = getattr(cls, name)
    spent = calls.setdefault(label, [])
    def wrapper(*args, **kwargs):
        start = perf_counter_ns()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(perf_counter_ns() - start)
    setattr(cls, name, wrapper)

timed(EngineCore, "frame", "engine: one frame, all of it")
timed(Recorder, "feed", "recorder: one frame, all of it")
timed(StepDetector, "check", "step detector (decodes)")
timed(PreRoll, "keep", "pre-roll keep")
timed(RecordingWriter, "write", "write one record")
timed(Recorder, "_begin", "open a segment + pre-roll")
timed(Recorder, "_stop_segment", "close a segment")
timed(Recorder, "tick", "10 Hz tick")
t0 = time.perf_counter()

@atexit.register
def report():
    wall = time.perf_counter() - t0
    print(f"{'stage':32} {'calls':>7} {'median us':>10} {'ms/s':>7}", file=sys.stderr)
    for label, spent in calls.items():
        if spent:
            median = statistics.median(spent) / 1e3
            print(f"{label:32} {len(spent):7} {median:10.1f} {sum(spent) / 1e6 / wall:7.2f}", file=sys.stderr)

from engine.cli.main import main
sys.argv = ["cuecap", "-q", "run", "--no-http", "--no-watch", "--for", sys.argv[1], sys.argv[2]]
main(prog_name="cuecap")
"""

# The step detector's check on recorded frames, hot and with the caches evicted first.
COLD = """
import glob, statistics, sys
from time import perf_counter_ns
from engine.recording.reader import read_frames
from engine.core.frame import Frame
from engine.recorder.detectors import StepDetector

raws = [(f.raw, f.time) for p in sorted(glob.glob(sys.argv[1] + "/**/*.bin", recursive=True))
        for f in read_frames(p) if f.kind == "active_capacitance"][:500]
junk = bytearray(16 << 20)  # larger than the caches: what other processes leave behind
detector = StepDetector("active_capacitance.calibrated", 15)
if not raws:
    sys.exit("step detector check: nothing was recorded (a longer --seconds)")
for label, cold in (("hot loop", False), ("caches evicted", True)):
    spent = []
    for raw, t in raws:
        frame = Frame(raw, t, 0)
        if cold:
            junk[::64] = bytes(len(junk) // 64)
        start = perf_counter_ns()
        detector.check(frame)
        spent.append(perf_counter_ns() - start)
    print(f"step detector check, {label:15} median {statistics.median(spent) / 1e3:6.2f} us "
          f"({len(raws)} frames)")
"""

SOURCE_ONLY = """\
settings:
  recordings: {root}/recordings
sources:
  lab: {{type: websocket, url: "{uri}"}}
"""


@dataclass
class Usage:
    cpu: float  # seconds of CPU, user + system, in the steady window
    wall: float  # seconds of that window
    max_rss_mb: float  # peak resident memory until the last sample (0.5 s before the end)

    @property
    def core_percent(self) -> float:
        return 100 * self.cpu / self.wall


TICK = os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's resident high-water mark (``VmHWM``), of this program only.

    Not ``wait4``'s ``ru_maxrss``: a child forked from a big parent starts with the
    parent's pages counted until it execs.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(argv: list[str], cwd: Path, seconds: float, warmup: float) -> Usage:
    """CPU from ``warmup`` s after the start to 0.5 s before the end: start-up not counted."""
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(warmup)
    first, t0 = cpu_seconds(process.pid), time.perf_counter()
    time.sleep(max(0.5, seconds - warmup - 0.5))
    last, t1 = cpu_seconds(process.pid), time.perf_counter()
    peak = peak_rss_mb(process.pid)
    _, status, _ = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        err = process.stderr.read().decode(errors="replace") if process.stderr else ""
        raise SystemExit(f"{argv[:4]} failed ({process.returncode}):\n{err[-2000:]}")
    return Usage(last - first, t1 - t0, peak)


def _paired(mine: list[Usage], base: list[Usage]) -> float:
    """The median of the per-round CPU ratios."""
    return statistics.median(
        m.core_percent / b.core_percent for m, b in zip(mine, base, strict=True)
    )


def run_help_has(flag: str) -> bool:
    out = subprocess.run([*CUECAP, "run", "--help"], capture_output=True, text=True, cwd=ROOT)
    return flag in out.stdout


def stages(root: Path, rules: Path, seconds: float) -> None:
    """The recorder's stages timed live, then the detector's check hot and cold."""
    code = root / "stages.py"
    code.write_text(textwrap.dedent(STAGES), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(code), str(seconds), str(rules)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    print(out.stderr, end="")
    cold = root / "cold.py"
    cold.write_text(textwrap.dedent(COLD), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(cold), str(root / "recordings")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    print(out.stdout, end="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="wall seconds per contender")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds not counted at start")
    parser.add_argument("--quick", action="store_true", help="a short run (checks it works)")
    parser.add_argument("--stages", action="store_true", help="also time the recorder's stages")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.warmup = 4.0, 1, 2.0
    extra = ["--no-http"] if run_help_has("--no-http") else []
    rows: dict[str, list[Usage]] = {"bare": [], "cuecap": [], "source": []}
    with tempfile.TemporaryDirectory(prefix="cuecap-footprint-") as tmp:
        root = Path(tmp)
        port = free_port()
        uri = f"ws://127.0.0.1:{port}"
        sim = subprocess.Popen(
            [*CUECAP, "-q", "sim", "--port", str(port), "--fps", "30", "--image-size", "1024x768"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(port)
            rules = root / "rules.yaml"
            rules.write_text(RULES.format(root=root, uri=uri), encoding="utf-8")
            source_only = root / "source.yaml"
            source_only.write_text(SOURCE_ONLY.format(root=root, uri=uri), encoding="utf-8")
            client = root / "bare.py"
            client.write_text(textwrap.dedent(BARE_CLIENT), encoding="utf-8")
            names = list(rows)
            for i in range(args.rounds):
                for name in names[i % 3 :] + names[: i % 3]:  # rotate who goes first
                    if name == "bare":
                        cmd = [sys.executable, str(client), uri, str(args.seconds)]
                    else:
                        what = rules if name == "cuecap" else source_only
                        cmd = [*CUECAP, "-q", "run", *extra, "--for", str(args.seconds), str(what)]
                    rows[name].append(measure(cmd, ROOT, args.seconds, args.warmup))
            if args.stages:
                stages(root, rules, args.seconds)
        finally:
            sim.terminate()
            sim.wait(10)
    window = args.seconds - args.warmup - 0.5
    print(f"{'':8} {'CPU % of a core':>16} {'peak RSS MB':>12}   (steady {window:g} s of each run)")
    for name, usages in rows.items():
        cpu = statistics.median(u.core_percent for u in usages)
        rss = max(u.max_rss_mb for u in usages)
        print(f"{name:8} {cpu:16.2f} {rss:12.1f}")
    ratio = _paired(rows["cuecap"], rows["bare"])
    own = _paired(rows["source"], rows["bare"])
    peak = max(u.max_rss_mb for u in rows["cuecap"])
    print(
        f"cuecap CPU is {ratio:.2f}x the bare client's (median of {args.rounds} rounds; "
        f"target <= 1.1), {'met' if ratio <= 1.1 else 'NOT met'}"
    )
    if ratio > 1.1:
        print(
            f"  why: the engine with the same source and nothing else is {own:.2f}x the bare "
            f"client; the rest is the recorder's work (detectors, pre-roll, writing the "
            f"recordings: the bare client writes nothing), each frame handled alone on a wake-up "
            f"from cold caches at ~20x its hot-loop cost (--stages times it); see "
            f"docs/benchmarks.md"
        )
    print(f"cuecap peak RSS {peak:.0f} MB (target <= 64)")
    if not args.quick:
        from results import report

        report("footprint", "cpu vs bare client", ratio, "x", target=1.1, better="lower")
        report("footprint", "cpu of the engine alone vs bare client", own, "x")
        report("footprint", "peak rss", peak, "MB", target=64, better="lower")
    return 0


if __name__ == "__main__":
    sys.exit(main())
