"""Camera frames for the simulator: real JPEGs of the electrode grid.

A frame shows the board, the driven electrodes, the droplet and, in a band at
the top, a frame counter and the time, so a recording's video can be checked by
eye. Encoding a 1024x768 JPEG for every frame at 30 fps would cost the stream a
good part of a core, yet only the band changes from frame to frame. So the
board picture is encoded once per distinct grid state (and cached), with a JPEG
restart marker right below the band; each frame then encodes only the small
band and splices its entropy-coded data in front of the cached rest. Restart
markers reset the decoder's DC prediction, so the result is an ordinary,
valid baseline JPEG. If the band's tables ever differ from the cached image's
(an unusual libjpeg), frames fall back to a full encode.
"""

from __future__ import annotations

import io
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, features

from engine.errors import CuecapError
from engine.sim import board

_MCU_ROWS = 16  # pixel rows per MCU with 4:2:0 chroma subsampling
_SOS = 0xDA
_SPLICE_MARKERS = (0xDB, 0xC4, 0xDD, 0xDA)  # DQT, DHT, DRI, SOS: must match to splice

_BACKGROUND = (34, 36, 40)
_PCB = (22, 58, 40)
_ELECTRODE = (170, 142, 84)
_DRIVEN = (156, 84, 226)
_LIQUID = (64, 142, 232)
_BAND = (0, 0, 0)
_TEXT = (235, 235, 235)


@dataclass(frozen=True, slots=True)
class View:
    """What a frame shows: the driven electrodes and the droplet's centre in grid units.

    ``droplet`` is (column, row) of the electrode the droplet is on, fractional
    while it moves; callers quantise it so that renders can be cached.
    """

    driven: frozenset[int]
    droplet: tuple[float, float]


class RenderError(CuecapError, ValueError):
    """Renderer options that cannot produce a frame."""


def _band_height(height: int) -> int:
    return 2 * _MCU_ROWS if height >= 256 else _MCU_ROWS


def _scan_split(data: bytes) -> tuple[int, list[bytes]]:
    """Offset where the entropy-coded data starts, and the segments a splice depends on."""
    pos = 2  # after SOI
    tables: list[bytes] = []
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SPLICE_MARKERS:
            tables.append(data[pos:end])
        pos = end
        if marker == _SOS:
            return pos, tables
    raise RenderError("encoder produced a JPEG without a scan")


@dataclass(frozen=True, slots=True)
class _Base:
    head: bytes  # up to and including the SOS header
    tail: bytes  # from the first restart marker to EOI; empty: no splice possible
    tables: tuple[bytes, ...]


class GridRenderer:
    """Renders ``View``s to JPEG bytes; thread-safe, renders cached per view.

    ``transform`` (a 3x3 homography, row-major, grid units to pixels) and
    ``qr_codes`` (the fiducials' corners in pixels) describe the picture the way
    an ``image_transform`` event does.
    """

    def __init__(
        self,
        size: tuple[int, int] = (1024, 768),
        quality: int = 85,
        *,
        seed: int = 0,
        cache_size: int = 128,
    ) -> None:
        width, height = size
        if width < 32 or height < 32 or width > 8192 or height > 8192:
            raise RenderError(f"image size {width}x{height}: each side must be 32 to 8192 pixels")
        if not 1 <= quality <= 95:
            raise RenderError(f"JPEG quality {quality}: must be 1 to 95")
        self.size = (width, height)
        self.quality = quality
        self.cache_size = max(1, cache_size)
        self.band = _band_height(height)
        self.renders = 0  # board pictures drawn and encoded (cache misses)
        self.frames = 0
        self.full_encodes = 0  # frames that could not be spliced
        self._lock = threading.Lock()
        self._cache: OrderedDict[View, _Base] = OrderedDict()
        self._font = _font(max(8, self.band * 5 // 8))
        self._glyphs: dict[str, tuple[int, list[bytes]]] = {}

        area_top = self.band
        area_h = height - area_top
        self.pitch = pitch = max(1, min(width // (board.COLS + 4), area_h // (board.ROWS + 3)))
        self.origin = x0, y0 = (
            (width - board.COLS * pitch) // 2,
            area_top + (area_h - board.ROWS * pitch) // 2,
        )
        self.transform: tuple[float, ...] = (pitch, 0.0, x0, 0.0, pitch, y0, 0.0, 0.0, 1.0)
        q = max(3, pitch * 3 // 2)
        right = x0 + board.COLS * pitch + pitch // 3
        left = max(0, x0 - q - pitch // 3)
        bottom = y0 + board.ROWS * pitch - q
        self.qr_codes: tuple[tuple[tuple[int, int], ...], ...] = tuple(
            ((x, y), (x + q, y), (x + q, y + q), (x, y + q))
            for x, y in ((left, y0), (right, y0), (left, bottom))
        )
        self._background = self._draw_background(seed)

    # -- drawing ---------------------------------------------------------------

    def _cell(self, pin: int, inset: float) -> tuple[float, float, float, float]:
        col, row = board.position(pin)
        x0, y0 = self.origin
        p = self.pitch
        gap = p * inset
        return (
            x0 + col * p + gap,
            y0 + row * p + gap,
            x0 + (col + 1) * p - gap,
            y0 + (row + 1) * p - gap,
        )

    def _blob(self, col: float, row: float) -> tuple[float, float, float, float]:
        x0, y0 = self.origin
        p = self.pitch
        cx, cy, r = x0 + (col + 0.5) * p, y0 + (row + 0.5) * p, p * 0.42
        return (cx - r, cy - r, cx + r, cy + r)

    def _draw_background(self, seed: int) -> Image.Image:
        """The static picture: sensor-noise texture, board, electrodes, reservoirs, fiducials."""
        width, height = self.size
        image = Image.new("RGB", self.size, _BACKGROUND)
        # A real camera's noise is what makes its JPEGs ~100 KB; a flat picture would be 15 KB.
        texture = Image.frombytes("L", self.size, random.Random(seed).randbytes(width * height))
        image = Image.blend(image, Image.merge("RGB", (texture,) * 3), 0.04)
        draw = ImageDraw.Draw(image)
        x0, y0 = self.origin
        p = self.pitch
        draw.rectangle(
            (x0 - p // 4, y0 - p // 4, x0 + board.COLS * p + p // 4, y0 + board.ROWS * p + p // 4),
            fill=_PCB,
        )
        for pin in range(board.ELECTRODES):
            draw.rectangle(self._cell(pin, 0.06), fill=_ELECTRODE)
        for pin in board.RESERVOIRS:
            draw.ellipse(self._blob(*board.position(pin)), fill=_LIQUID)
        for corners in self.qr_codes:
            (ax, ay), _, (bx, by), _ = corners
            q = bx - ax
            draw.rectangle((ax, ay, bx, by), fill=(0, 0, 0))
            draw.rectangle((ax + q / 7, ay + q / 7, bx - q / 7, by - q / 7), fill=(255, 255, 255))
            draw.rectangle(
                (ax + 2 * q / 7, ay + 2 * q / 7, bx - 2 * q / 7, by - 2 * q / 7), fill=(0, 0, 0)
            )
        draw.rectangle((0, 0, width - 1, self.band - 1), fill=_BAND)
        return image

    def _picture(self, view: View) -> Image.Image:
        image = self._background.copy()
        draw = ImageDraw.Draw(image)
        for pin in view.driven:
            if 0 <= pin < board.ELECTRODES:
                draw.rectangle(self._cell(pin, 0.06), fill=_DRIVEN)
        draw.ellipse(self._blob(*view.droplet), fill=_LIQUID, outline=(200, 230, 255))
        return image

    def _glyph(self, char: str) -> tuple[int, list[bytes]]:
        """Width and pixel rows (RGB bytes) of one character on the band's background."""
        glyph = self._glyphs.get(char)
        if glyph is None:
            width = max(1, round(self._font.getlength(char)))
            tile = Image.new("RGB", (width, self.band), _BAND)
            ImageDraw.Draw(tile).text((0, self.band // 8), char, fill=_TEXT, font=self._font)
            data, row = tile.tobytes(), width * 3
            glyph = self._glyphs[char] = (
                width,
                [data[i * row : (i + 1) * row] for i in range(self.band)],
            )
        return glyph

    def _band(self, label: str) -> Image.Image:
        """The top band with ``label``, assembled from cached glyph rows.

        Drawing text (or pasting glyph images one by one) costs more than
        encoding the band; joining byte rows costs next to nothing.
        """
        width = self.size[0]
        glyphs = []
        x = 4
        for char in label:
            w, rows = self._glyph(char)
            if x + w > width:
                break
            glyphs.append(rows)
            x += w
        left, right = bytes(_BAND) * 4, bytes(_BAND) * (width - x)
        data = b"".join(
            b"".join((left, *(rows[r] for rows in glyphs), right)) for r in range(self.band)
        )
        return Image.frombytes("RGB", (width, self.band), data)

    # -- encoding --------------------------------------------------------------

    def _encode(self, image: Image.Image) -> bytes:
        buf = io.BytesIO()
        image.save(
            buf,
            "JPEG",
            quality=self.quality,
            subsampling=2,  # 4:2:0, so an MCU is 16 rows and the band is whole MCU rows
            restart_marker_rows=self.band // _MCU_ROWS,
            optimize=False,  # standard Huffman tables: the band and the picture share them
        )
        return buf.getvalue()

    def _base(self, view: View) -> _Base:
        with self._lock:
            base = self._cache.get(view)
            if base is not None:
                self._cache.move_to_end(view)
                return base
        data = self._encode(self._picture(view))
        start, tables = _scan_split(data)
        marker = data.find(b"\xff\xd0", start)
        base = _Base(data[:start], data[marker:] if marker >= 0 else b"", tuple(tables))
        with self._lock:
            self.renders += 1
            self._cache[view] = base
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return base

    def render(self, view: View, label: str = "") -> bytes:
        """A JPEG of ``view`` with ``label`` (frame counter, time) in the top band."""
        base = self._base(view)
        band = self._encode(self._band(label))
        start, tables = _scan_split(band)
        with self._lock:
            self.frames += 1
            if base.tail and tuple(tables) == base.tables:
                return b"".join((base.head, band[start:-2], base.tail))
            self.full_encodes += 1
        image = self._picture(view)
        image.paste(self._band(label), (0, 0))
        return self._encode(image)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    if features.check("freetype2"):
        return ImageFont.load_default(size=size)
    return ImageFont.load_default()
