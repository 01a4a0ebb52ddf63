"""A seeded, virtual-time PurpleDrop: the event stream a real ``pdserver`` would send.

The world is pure: no I/O, no clock. ``events(start)`` yields ``(time, raw)``
pairs in time order, where ``raw`` is a serialized ``PurpleDropEvent``, so the
same world feeds a websocket server paced in real time, an in-process source
running as fast as the CPU allows, and tests that want an exact answer.

Activity follows ``purpledrop-wire.md``: bursts of droplet moves (each a few
``electrode_state`` events within 200 ms, then a dip-and-recover step in the
active and group capacitance while the droplet slides over, then a changed
scan map) separated by idle stretches in which only background flows. The
ground truth (``bursts``) is computed from the same seeded plan as the events,
independently of iteration, so a recorder test can compare exact times.

Each concern draws from its own seeded random stream: the burst plan does not
change when the camera rate changes, and one stream's noise does not shift
another's.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from engine.errors import CuecapError
from engine.proto.purpledrop_pb2 import (
    ActiveCapacitance,
    CapacitanceMeasurement,
    DeviceInfo,
    DutyCycleUpdated,
    ElectrodeGroup,
    ElectrodeLayout,
    ElectrodeState,
    GroupCapacitance,
    HvRegulator,
    Image,
    ImageTransform,
    PurpleDropEvent,
    ScanCapacitance,
    TemperatureControl,
    Timestamp,
)
from engine.sim import board

if TYPE_CHECKING:
    from engine.sim.render import View

MOVE_WINDOW = 0.2
"""Seconds within which all ``electrode_state`` events of one move fall."""
TRAVEL = (0.12, 0.3)
"""Seconds the droplet takes to slide onto the newly driven electrode."""
RELEASE_DELAY = (0.3, 0.8)
"""Seconds after the last arrival before a burst releases its electrodes."""
MIN_MOVE_SPACING = MOVE_WINDOW + TRAVEL[1] + 0.05
DROPLET_PF = 40.0
"""Calibrated capacitance (pF) of a droplet covering one electrode."""
ADC_BASELINE = 312.0
ADC_PER_PF = 8.5
HV_VOLTAGE = 240.0
TEMPERATURES = (25.0, 24.6)
JITTER = 0.05
"""Background events arrive within this fraction of a period of their nominal time."""


class SimConfigError(CuecapError, ValueError):
    """A simulator option that makes no sense; the message names the option."""


def _range(
    name: str, value: Any, *, minimum: float = 0.0, integer: bool = False
) -> tuple[float, float]:  # `value` is the caller's, of any type: this checks it
    try:
        lo, hi = value
        lo, hi = (int(lo), int(hi)) if integer else (float(lo), float(hi))
    except (TypeError, ValueError):
        raise SimConfigError(f"{name}={value!r}: expected a (min, max) pair of numbers") from None
    if not (minimum <= lo <= hi) or math.isinf(hi):
        raise SimConfigError(f"{name}=({lo}, {hi}): need {minimum} <= min <= max, both finite")
    return lo, hi


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes a simulated stream, except the seed. Validated on creation."""

    fps: float = 10.0
    """Camera frames per second (an image_transform + image pair each); 0 disables the camera."""
    image_size: tuple[int, int] = (1024, 768)
    jpeg_quality: int = 85
    idle: tuple[float, float] = (8.0, 20.0)
    """Seconds of quiet between the end of one burst and the start of the next."""
    moves_per_burst: tuple[int, int] = (2, 6)
    move_spacing: tuple[float, float] = (0.6, 1.5)
    """Seconds from one move's first electrode_state to the next move's."""
    first_burst_delay: float = 3.0
    release_probability: float = 0.5
    """Chance that a burst ends by switching its electrodes off (else they stay driven)."""
    max_bursts: int | None = None
    """Stop moving after this many bursts (background goes on); None: no limit."""
    capacitance_rate: float = 50.0
    scan_rate: float = 1.0
    hv_rate: float = 1.0
    temperature_rate: float = 4.0
    noise: float = 0.1
    """Standard deviation (pF) of capacitance noise; bounded at 3 sigma so it never looks like a step."""
    serial_number: str = "SIM-0001"
    software_version: str = "cuecap-sim 1"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "idle", _range("idle", self.idle))
        set_(
            self,
            "moves_per_burst",
            _range("moves_per_burst", self.moves_per_burst, minimum=1, integer=True),
        )
        set_(self, "move_spacing", _range("move_spacing", self.move_spacing))
        if self.move_spacing[0] < MIN_MOVE_SPACING:
            raise SimConfigError(
                f"move_spacing={self.move_spacing}: the shortest spacing must be at least "
                f"{MIN_MOVE_SPACING:g} s (a move and the droplet's travel take up to "
                f"{MOVE_WINDOW + TRAVEL[1]:g} s)"
            )
        try:
            width, height = (int(v) for v in self.image_size)
        except (TypeError, ValueError):
            raise SimConfigError(
                f"image_size={self.image_size!r}: expected (width, height)"
            ) from None
        if not (32 <= width <= 8192 and 32 <= height <= 8192):
            raise SimConfigError(
                f"image_size={width}x{height}: each side must be 32 to 8192 pixels"
            )
        set_(self, "image_size", (width, height))
        if not 1 <= self.jpeg_quality <= 95:
            raise SimConfigError(f"jpeg_quality={self.jpeg_quality}: must be 1 to 95")
        if not 0 <= self.fps <= 120:
            raise SimConfigError(f"fps={self.fps}: must be 0 (no camera) to 120")
        for name in ("capacitance_rate", "scan_rate", "hv_rate", "temperature_rate"):
            rate = getattr(self, name)
            if not 0 < rate <= 10_000:
                raise SimConfigError(f"{name}={rate}: must be above 0 and at most 10000 per second")
        if not 0 <= self.first_burst_delay < math.inf:
            raise SimConfigError(
                f"first_burst_delay={self.first_burst_delay}: must be 0 or more seconds"
            )
        if not 0 <= self.release_probability <= 1:
            raise SimConfigError(f"release_probability={self.release_probability}: must be 0 to 1")
        if self.max_bursts is not None and self.max_bursts < 0:
            raise SimConfigError(f"max_bursts={self.max_bursts}: must be 0 or more (or None)")
        if not 0 <= self.noise <= DROPLET_PF / 20:
            raise SimConfigError(f"noise={self.noise}: must be 0 to {DROPLET_PF / 20:g} pF")


OPTIONS: frozenset[str] = frozenset(f.name for f in fields(SimConfig))


# -- ground truth ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    """One droplet move: its ``electrode_state`` times, then ``travel`` seconds of sliding."""

    source: int
    target: int
    times: tuple[float, ...]
    travel: float

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    @property
    def arrival(self) -> float:
        """When the droplet sits fully on ``target``: the capacitance step is over."""
        return self.times[-1] + self.travel

    def shifted(self, offset: float) -> Move:
        return replace(self, times=tuple(offset + t for t in self.times))


@dataclass(frozen=True, slots=True)
class Burst:
    """A period of activity: ``start``/``end`` are its first and last electrode_state times.

    ``settled`` is when the burst's last consequence is over (the droplet's
    arrival or the last duty-cycle update); ``release`` is the time of the
    electrode_state that switched every electrode off, None if they stay driven.
    """

    index: int
    moves: tuple[Move, ...]
    release: float | None
    settled: float

    @property
    def start(self) -> float:
        return self.moves[0].start

    @property
    def end(self) -> float:
        return self.release if self.release is not None else self.moves[-1].end

    @property
    def activity(self) -> tuple[float, ...]:
        """Times of all its electrode_state events, in order."""
        times = [t for move in self.moves for t in move.times]
        if self.release is not None:
            times.append(self.release)
        return tuple(times)

    def shifted(self, offset: float) -> Burst:
        return Burst(
            self.index,
            tuple(m.shifted(offset) for m in self.moves),
            None if self.release is None else offset + self.release,
            offset + self.settled,
        )


# What a plan item does: drive electrodes (drive, scanned, scan setting, and for the
# step that ends a move its travel: source, destination, arrival, travel time), or
# set the duty cycle.
_Travel: TypeAlias = tuple[int, int, float, float]
_StateStep: TypeAlias = tuple[
    Literal["state"], frozenset[int], frozenset[int], int, "_Travel | None"
]
_DutyStep: TypeAlias = tuple[Literal["duty"], int]
_Step: TypeAlias = "_StateStep | _DutyStep"
# A plan item: (relative time, order within the burst, what happens).
_PlanItem: TypeAlias = tuple[float, int, "_Step"]


def _plans(config: SimConfig, seed: int) -> Iterator[tuple[Burst, list[_PlanItem]]]:
    """The bursts in relative time, with the events each one causes."""
    rng = random.Random(f"cuecap-sim:{seed}:bursts")
    free = [p for p in range(board.ELECTRODES) if p not in board.RESERVOIRS]
    pos = rng.choice(free)
    heading = 0
    holding = False  # electrodes still driven from the previous burst
    t = config.first_burst_delay
    index = 0
    while config.max_bursts is None or index < config.max_bursts:
        items: list[_PlanItem] = []
        moves: list[Move] = []

        def add(when: float, what: _Step, items: list[_PlanItem] = items) -> None:
            items.append((when, len(items), what))

        for m in range(rng.randint(*config.moves_per_burst)):
            src = pos
            options = board.neighbours(src)
            ahead = src + heading
            dst = (
                ahead
                if heading and ahead in options and rng.random() < 0.6
                else rng.choice(options)
            )
            heading = dst - src
            window = rng.uniform(0.08, MOVE_WINDOW)
            mids = sorted(t + rng.uniform(0.02, window - 0.02) for _ in range(rng.randint(0, 2)))
            times = (t, *mids, t + window)
            travel = rng.uniform(*TRAVEL)
            add(t, ("state", frozenset((src,)), frozenset((src, dst)), 0, None))
            if m == 0 and not holding:
                add(t, ("duty", rng.randint(150, 220)))
            for mid in mids:  # the controller switches the scan gain while it sets up
                add(mid, ("state", frozenset((src,)), frozenset((src, dst)), 1, None))
            add(
                times[-1],
                ("state", frozenset((dst,)), frozenset((dst,)), 0, (src, dst, times[-1], travel)),
            )
            add(times[-1], ("duty", 255))
            add(times[-1] + travel, ("duty", rng.randint(150, 220)))
            moves.append(Move(src, dst, times, travel))
            pos = dst
            t += rng.uniform(*config.move_spacing)
        release = None
        if rng.random() < config.release_probability:
            release = moves[-1].arrival + rng.uniform(*RELEASE_DELAY)
            add(release, ("state", frozenset(), frozenset((pos,)), 0, None))
            add(release, ("duty", 0))
        holding = release is None
        items.sort()
        burst = Burst(index, tuple(moves), release, items[-1][0])
        yield burst, items
        index += 1
        t = burst.settled + rng.uniform(*config.idle)


# -- the stream -------------------------------------------------------------------

_PLAN, _ACTIVE, _GROUP, _SCAN, _HV, _TEMP, _CAMERA = range(7)


def _stamp(t: float) -> Timestamp:
    seconds = math.floor(t)
    nanos = round((t - seconds) * 1e9)
    if nanos >= 1_000_000_000:
        seconds, nanos = seconds + 1, nanos - 1_000_000_000
    return Timestamp(seconds=seconds, nanos=nanos)


def _smooth(x: float) -> float:
    x = 0.0 if x < 0.0 else 1.0 if x > 1.0 else x
    return x * x * (3.0 - 2.0 * x)


class Renderer(Protocol):
    """What draws the camera: ``GridRenderer``'s picture and geometry."""

    @property
    def size(self) -> tuple[int, int]: ...
    @property
    def transform(self) -> tuple[float, ...]: ...
    @property
    def qr_codes(self) -> tuple[tuple[tuple[int, int], ...], ...]: ...
    def render(self, view: View, label: str = "") -> bytes: ...


class SimWorld:
    """A seeded simulated PurpleDrop. ``SimWorld(seed=3, fps=0, idle=(2, 5))``.

    Options are the fields of ``SimConfig``; pass ``config=`` to start from one,
    ``renderer=`` to draw camera frames some other way.
    Worlds are cheap and reusable: every ``events()`` call replays the same
    stream from the given start time.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        config: SimConfig | None = None,
        renderer: Renderer | None = None,
        **options: Any,  # SimConfig's fields: it checks them
    ) -> None:
        unknown = set(options) - OPTIONS
        if unknown:
            raise SimConfigError(
                f"unknown simulator option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(OPTIONS))}"
            )
        self.seed = int(seed)
        self.config = replace(config or SimConfig(), **options)
        layout = random.Random(f"cuecap-sim:{self.seed}:layout")
        # Electrodes differ a little (pad size, dielectric): resting capacitance differs per electrode.
        self.gains: tuple[float, ...] = tuple(
            layout.uniform(0.9, 1.1) for _ in range(board.ELECTRODES)
        )
        self._renderer = renderer
        self._state_cache: dict[tuple[frozenset[int], frozenset[int], int], bytes] = {}

    def __repr__(self) -> str:
        return f"SimWorld(seed={self.seed}, {self.config})"

    @property
    def renderer(self) -> Renderer:
        """The camera's ``GridRenderer`` (created on first use: Pillow loads only if needed)."""
        if self._renderer is None:
            from engine.sim.render import GridRenderer

            self._renderer = GridRenderer(
                self.config.image_size, self.config.jpeg_quality, seed=self.seed
            )
        return self._renderer

    # -- ground truth ---------------------------------------------------------

    def bursts(self, start: float = 0.0, until: float | None = None) -> list[Burst]:
        """The bursts that begin before ``until`` (required unless ``max_bursts`` is set).

        Times are absolute (``start`` plus offsets) and equal, bit for bit, the
        times ``events(start)`` gives the same electrode_state events. A burst
        that ``until`` cuts keeps its full plan here.
        """
        if until is None and self.config.max_bursts is None:
            raise SimConfigError(
                "bursts(): pass until= (the world has no max_bursts, so bursts never end)"
            )
        out = []
        for burst, _ in _plans(self.config, self.seed):
            shifted = burst.shifted(start)
            if until is not None and shifted.start >= until:
                break
            out.append(shifted)
        return out

    def activity(self, start: float = 0.0, until: float | None = None) -> list[float]:
        """Times of every electrode_state event in ``[start, until)``."""
        return [
            t for b in self.bursts(start, until) for t in b.activity if until is None or t < until
        ]

    # -- events -----------------------------------------------------------------

    def _state_bytes(self, drive: frozenset[int], scan0: frozenset[int], setting: int) -> bytes:
        key = (drive, scan0, setting)
        raw = self._state_cache.get(key)
        if raw is None:
            n = board.ELECTRODES

            def group(pins: frozenset[int] | tuple[int, ...], setting: int = 0) -> ElectrodeGroup:
                return ElectrodeGroup(electrodes=[i in pins for i in range(n)], setting=setting)

            state = ElectrodeState(
                drive_groups=[group(drive), group(())],
                scan_groups=[group(scan0, setting)] + [group((p,), 1) for p in board.RESERVOIRS],
            )
            raw = PurpleDropEvent(electrode_state=state).SerializeToString()
            if len(self._state_cache) > 4096:
                self._state_cache.clear()
            self._state_cache[key] = raw
        return raw

    def events(
        self, start: float = 0.0, until: float | None = None
    ) -> Iterator[tuple[float, bytes]]:
        """``(time, raw event)`` pairs from ``start`` (epoch seconds) on, in time order.

        Infinite unless ``until`` is given (events at ``until`` or later are not
        produced). Equal times keep the server's order: a state change comes
        before the measurements taken at that instant, an image_transform
        before its image.
        """
        return _Run(self, start, until).run()

    def start_events(self, start: float) -> list[bytes]:
        """What a server announces when it starts: device_info, then electrode_layout."""
        return [
            PurpleDropEvent(
                device_info=DeviceInfo(
                    connected=True,
                    serial_number=self.config.serial_number,
                    software_version=self.config.software_version,
                )
            ).SerializeToString(),
            PurpleDropEvent(
                electrode_layout=ElectrodeLayout(
                    timestamp=_stamp(start), layout=board.layout_json()
                )
            ).SerializeToString(),
        ]


class _Run:
    """One pass over a world's stream: the droplet's state as time advances."""

    def __init__(self, world: SimWorld, start: float, until: float | None) -> None:
        self.world = world
        self.config = world.config
        self.start = float(start)
        self.until = until
        self.gains = world.gains
        seed = world.seed
        self.rngs = {k: random.Random(f"cuecap-sim:{seed}:stream:{k}") for k in range(7)}
        self.drive: frozenset[int] = frozenset()
        self.scan0: frozenset[int] = frozenset()
        self.pos = -1  # set by the first move
        self.travel: tuple[int, int, float, float] | None = None

    # -- the droplet --------------------------------------------------------------

    def coverage(self, pin: int, t: float) -> float:
        """How much of electrode ``pin`` the droplet covers at relative time ``t`` (0 to 1)."""
        travel = self.travel
        if travel is not None:
            src, dst, t0, tau = travel
            if t < t0 + tau:
                f = _smooth((t - t0) / tau)
                return 1.0 - f if pin == src else f if pin == dst else 0.0
        return 1.0 if pin == self.pos or pin in board.RESERVOIRS else 0.0

    def covered(self, pins: frozenset[int] | tuple[int, ...], t: float) -> float:
        gains = self.gains
        return sum(gains[p] * self.coverage(p, t) for p in pins)

    def droplet(self, t: float) -> tuple[float, float]:
        """Where the camera sees the droplet, in grid units, quantised to 1/8 electrode."""
        travel = self.travel
        if travel is None:
            pos = self.pos
            if pos < 0:
                return board.position(board.ELECTRODES // 2 + board.COLS // 2)
            return board.position(pos)
        src, dst, t0, tau = travel
        f = _smooth((t - t0) / tau)
        (c0, r0), (c1, r1) = board.position(src), board.position(dst)
        return (round((c0 + (c1 - c0) * f) * 8) / 8, round((r0 + (r1 - r0) * f) * 8) / 8)

    def noise(self, rng: random.Random, sigma: float) -> float:
        n = rng.gauss(0.0, sigma)
        limit = 3.0 * sigma
        return limit if n > limit else -limit if n < -limit else n

    def drift(self, t: float, period: float) -> float:
        return math.sin(2.0 * math.pi * (self.start + t) / period)

    # -- one event per stream --------------------------------------------------------

    def active(self, t: float, rng: random.Random) -> bytes:
        noise = self.config.noise
        calibrated = DROPLET_PF * self.covered(self.drive, t) + 0.3 * noise * self.drift(t, 600.0)
        calibrated += self.noise(rng, noise)
        baseline = ADC_BASELINE + 0.5 * self.drift(t, 900.0)
        msg = ActiveCapacitance(
            timestamp=_stamp(self.start + t),
            baseline=baseline,
            measurement=baseline + ADC_PER_PF * calibrated,
            calibrated=calibrated,
        )
        return PurpleDropEvent(active_capacitance=msg).SerializeToString()

    def group(self, t: float, rng: random.Random) -> bytes:
        noise = self.config.noise
        values = [DROPLET_PF * self.covered(self.scan0, t) + self.noise(rng, noise)]
        values += [DROPLET_PF * self.gains[p] + self.noise(rng, noise) for p in board.RESERVOIRS]
        msg = GroupCapacitance(
            timestamp=_stamp(self.start + t),
            measurements=values,
            raw_measurements=[ADC_BASELINE + ADC_PER_PF * v for v in values],
        )
        return PurpleDropEvent(group_capacitance=msg).SerializeToString()

    def scan(self, t: float, rng: random.Random) -> bytes:
        noise = self.config.noise
        gains = self.gains
        coverage = self.coverage
        gauss = rng.gauss
        measurements = []
        for pin in range(board.ELECTRODES):
            c = DROPLET_PF * gains[pin] * coverage(pin, t) + max(
                -3 * noise, min(3 * noise, gauss(0.0, noise))
            )
            measurements.append(
                CapacitanceMeasurement(
                    capacitance=c,
                    drop_present=c > DROPLET_PF / 2,
                    raw=ADC_BASELINE + ADC_PER_PF * c,
                )
            )
        msg = ScanCapacitance(timestamp=_stamp(self.start + t), measurements=measurements)
        return PurpleDropEvent(scan_capacitance=msg).SerializeToString()

    def hv(self, t: float, rng: random.Random) -> bytes:
        msg = HvRegulator(
            voltage=HV_VOLTAGE + 0.2 * self.drift(t, 300.0) + self.noise(rng, 0.15),
            v_target_out=1.62 + self.noise(rng, 0.002),
            timestamp=_stamp(self.start + t),
        )
        return PurpleDropEvent(hv_regulator=msg).SerializeToString()

    def temperature(self, t: float, rng: random.Random) -> bytes:
        d = self.drift(t, 1200.0)
        msg = TemperatureControl(
            temperatures=[
                TEMPERATURES[0] + 0.3 * d + self.noise(rng, 0.02),
                TEMPERATURES[1] + 0.2 * d,
            ],
            duty_cycles=[0.18 + 0.02 * d + self.noise(rng, 0.003), 0.0],
            timestamp=_stamp(self.start + t),
        )
        return PurpleDropEvent(temperature_control=msg).SerializeToString()

    def camera(self, t: float, frame: int) -> tuple[bytes, bytes]:
        from engine.sim.render import View

        renderer = self.world.renderer
        absolute = self.start + t
        when = datetime.fromtimestamp(absolute, UTC)
        label = f"frame {frame:06d}  {when:%Y-%m-%d %H:%M:%S}.{when.microsecond // 1000:03d} UTC"
        jpeg = renderer.render(View(self.drive, self.droplet(t)), label)
        stamp = _stamp(absolute)
        width, height = renderer.size
        transform = ImageTransform(
            timestamp=stamp,
            transform=renderer.transform,
            qr_codes=[
                ImageTransform.QrCodeLocation(
                    corners=[ImageTransform.Point(x=x, y=y) for x, y in corners]
                )
                for corners in renderer.qr_codes
            ],
            image_width=width,
            image_height=height,
        )
        return (
            PurpleDropEvent(image_transform=transform).SerializeToString(),
            PurpleDropEvent(image=Image(timestamp=stamp, image_data=jpeg)).SerializeToString(),
        )

    def apply(self, t: float, what: _Step) -> bytes:
        if what[0] == "duty":
            return PurpleDropEvent(
                duty_cycle_updated=DutyCycleUpdated(
                    timestamp=_stamp(self.start + t), duty_cycles=[what[1], 0]
                )
            ).SerializeToString()
        _, drive, scan0, setting, travel = what
        self.drive, self.scan0 = drive, scan0
        if self.pos < 0:
            self.pos = next(iter(drive))
        if travel is not None:
            self.travel = travel
            self.pos = travel[1]
        return self.world._state_bytes(drive, scan0, setting)

    # -- the merge ----------------------------------------------------------------

    def run(self) -> Iterator[tuple[float, bytes]]:
        config = self.config
        start = self.start
        limit = math.inf if self.until is None else self.until
        if start >= limit:
            return
        for raw in self.world.start_events(start):
            yield start, raw

        heap: list[tuple[float, int, int, int, _Step | None]] = []  # a plan item's step
        seq = 0
        periodic: dict[int, tuple[float, float]] = {  # stream -> (period, phase)
            _ACTIVE: (1.0 / config.capacitance_rate, 0.4 / config.capacitance_rate),
            _GROUP: (1.0 / config.capacitance_rate, 0.9 / config.capacitance_rate),
            _SCAN: (1.0 / config.scan_rate, 0.5 / config.scan_rate),
            _HV: (1.0 / config.hv_rate, 0.25 / config.hv_rate),
            _TEMP: (1.0 / config.temperature_rate, 0.15 / config.temperature_rate),
        }
        if config.fps > 0:
            periodic[_CAMERA] = (1.0 / config.fps, 0.3 / config.fps)
        counts = dict.fromkeys(periodic, 0)
        rngs = self.rngs

        def schedule(kind: int) -> None:
            nonlocal seq
            period, phase = periodic[kind]
            k = counts[kind]
            counts[kind] = k + 1
            seq += 1
            jitter = rngs[kind].uniform(-JITTER, JITTER) * period
            heapq.heappush(heap, (phase + k * period + jitter, 1, seq, kind, None))

        for kind in periodic:
            schedule(kind)

        plans = _plans(config, self.world.seed)
        pending = 0  # plan items of the current burst still in the heap

        def next_burst() -> None:
            nonlocal seq, pending
            plan = next(plans, None)
            if plan is None:
                return
            for when, _order, what in plan[1]:
                seq += 1
                heapq.heappush(heap, (when, 0, seq, _PLAN, what))
            pending = len(plan[1])

        next_burst()
        emit = {
            _ACTIVE: self.active,
            _GROUP: self.group,
            _SCAN: self.scan,
            _HV: self.hv,
            _TEMP: self.temperature,
        }
        pop = heapq.heappop
        while heap:
            t, _, _, kind, what = pop(heap)
            absolute = start + t
            if absolute >= limit:
                return
            if what is not None:  # only plan items (kind _PLAN) carry a step
                yield absolute, self.apply(t, what)
                pending -= 1
                if pending == 0:
                    next_burst()
                continue
            if self.travel is not None and t >= self.travel[2] + self.travel[3]:
                self.travel = None
            if kind == _CAMERA:
                for raw in self.camera(t, counts[_CAMERA]):
                    yield absolute, raw
            else:
                yield absolute, emit[kind](t, rngs[kind])
            schedule(kind)
