"""Is it a JPEG? A cheap check on every shot, a thorough one on request.

The seed counted "the file exists" as success, so a half-written file or an
HTML login page saved as ``.jpg`` was a success. A complete JPEG starts with
the SOI marker (``FF D8 FF``) and ends with EOI (``FF D9``); some cameras pad
after EOI, which is tolerated.
"""

from __future__ import annotations

import io

from engine.errors import UnsupportedType

SOI = b"\xff\xd8\xff"
EOI = b"\xff\xd9"
_PADDING = b"\x00\r\n\t "


def describe(data: bytes, limit: int = 24) -> str:
    """A short, log-safe description of what some bytes look like."""
    head = data[:256].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        kind = "an HTML page"
    elif head.startswith((b"{", b"[")):
        kind = "JSON or text"
    elif data.startswith(b"\x89PNG"):
        kind = "a PNG image"
    else:
        kind = "not a JPEG"
    return f"{kind} ({len(data)} bytes, starting {data[:limit]!r})"


def jpeg_problem(data: bytes) -> str | None:
    """Why ``data`` is not a complete JPEG, or None when it is one (markers check)."""
    if not data:
        return "empty image (0 bytes)"
    if not data.startswith(SOI):
        return f"not a JPEG: {describe(data)}"
    if not data.rstrip(_PADDING).endswith(EOI):
        return f"incomplete JPEG: {len(data)} bytes without the end-of-image marker"
    return None


def jpeg_problem_thorough(data: bytes) -> str | None:
    """Markers check, then Pillow decodes the whole image (catches corrupt scans)."""
    problem = jpeg_problem(data)
    if problem is not None:
        return problem
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return f"not a JPEG: Pillow reads it as {image.format}"
            image.load()
    except Exception as exc:  # Pillow raises many types for bad data
        return f"corrupt JPEG: {exc}"
    return None


def to_jpeg(image: object, quality: int = 90) -> bytes:
    """Encode a Pillow image as JPEG (for Python cameras that return images)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise UnsupportedType(f"expected JPEG bytes or a Pillow image, got {type(image).__name__}")
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()
