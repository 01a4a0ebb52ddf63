"""The simulated PurpleDrop board: 128 electrodes on a 16 x 8 grid, 4 reservoirs.

World, renderer and layout event all need the same geometry; keeping it in one
place means a droplet drawn on the camera frame sits on the electrode the
``electrode_state`` events drive.
"""

from __future__ import annotations

import json
from functools import cache

COLS = 16
ROWS = 8
ELECTRODES = COLS * ROWS  # pdserver sends 128 bools per electrode group
# Corner electrodes hold liquid all the time: reservoirs the droplet never enters.
RESERVOIRS: tuple[int, ...] = (0, COLS - 1, ELECTRODES - COLS, ELECTRODES - 1)
DRIVE_GROUPS = 2
SCAN_GROUPS = 5  # group 0 follows the droplet, groups 1-4 watch the reservoirs


def position(pin: int) -> tuple[int, int]:
    """Grid (column, row) of an electrode."""
    return pin % COLS, pin // COLS


def pin_at(col: int, row: int) -> int:
    return row * COLS + col


@cache
def neighbours(pin: int) -> tuple[int, ...]:
    """Electrodes a droplet on ``pin`` can move to: 4-neighbourhood, no reservoirs."""
    col, row = position(pin)
    out = []
    for dc, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        c, r = col + dc, row + dr
        if 0 <= c < COLS and 0 <= r < ROWS and pin_at(c, r) not in RESERVOIRS:
            out.append(pin_at(c, r))
    return tuple(out)


@cache
def layout_json() -> str:
    """The ``electrode_layout`` payload: the pin number at each grid position."""
    grid = [[pin_at(c, r) for c in range(COLS)] for r in range(ROWS)]
    return json.dumps({"grid": grid, "reservoirs": list(RESERVOIRS)}, separators=(",", ":"))
