"""Camera frames: real JPEGs, the counter band spliced into cached board pictures."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops

from engine.sim import board
from engine.sim.render import GridRenderer, RenderError, View

VIEW = View(frozenset({20}), (4.0, 1.0))


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()  # a corrupt stream fails here
    assert image.format == "JPEG"
    return image.convert("RGB")


def test_default_frames_look_like_a_camera_frame() -> None:
    renderer = GridRenderer()
    data = renderer.render(VIEW, "frame 000001  2024-01-01 00:00:00.000 UTC")
    assert decode(data).size == (1024, 768)
    assert 60_000 < len(data) < 160_000  # like pdcam's ~100 KB at quality 85


def test_frames_of_one_view_differ_only_in_the_band() -> None:
    renderer = GridRenderer((256, 192))
    first = decode(renderer.render(VIEW, "frame 000001"))
    second = decode(renderer.render(VIEW, "frame 999999"))
    band = renderer.band
    assert renderer.renders == 1 and renderer.frames == 2 and renderer.full_encodes == 0
    assert ImageChops.difference(
        first.crop((0, 0, 256, band)), second.crop((0, 0, 256, band))
    ).getbbox()
    below = (0, band + 8, 256, 192)  # chroma upsampling may blend the row next to the band
    assert ImageChops.difference(first.crop(below), second.crop(below)).getbbox() is None


def test_a_spliced_frame_decodes_like_a_full_encode() -> None:
    renderer = GridRenderer((320, 240), seed=3)
    spliced = decode(renderer.render(VIEW, "frame 000042"))
    picture = renderer._picture(VIEW)
    picture.paste(renderer._band("frame 000042"), (0, 0))
    whole = decode(renderer._encode(picture))
    assert ImageChops.difference(spliced, whole).getbbox() is None


def test_driven_electrodes_and_the_droplet_show() -> None:
    renderer = GridRenderer((256, 192))
    idle = decode(renderer.render(View(frozenset(), (4.0, 1.0))))
    driven = decode(renderer.render(View(frozenset({board.pin_at(10, 5)}), (4.0, 1.0))))
    moved = decode(renderer.render(View(frozenset(), (6.0, 3.0))))
    x0, y0 = renderer.origin
    p = renderer.pitch
    cell = (x0 + 10 * p + p // 2, y0 + 5 * p + p // 2)
    assert idle.getpixel(cell) != driven.getpixel(cell)
    assert ImageChops.difference(idle, moved).getbbox() is not None
    assert renderer.renders == 3


def test_the_cache_is_bounded() -> None:
    renderer = GridRenderer((64, 48), cache_size=2)
    views = [View(frozenset({p}), (1.0, 1.0)) for p in (17, 18, 19)]
    for view in views:
        renderer.render(view)
    renderer.render(views[2])
    assert renderer.renders == 3
    renderer.render(views[0])  # evicted: drawn again
    assert renderer.renders == 4


def test_labels_longer_than_the_frame_are_cut() -> None:
    renderer = GridRenderer((48, 32))
    assert decode(renderer.render(VIEW, "x" * 500)).size == (48, 32)


def test_transform_maps_grid_to_pixels() -> None:
    renderer = GridRenderer((640, 480))
    a, _, c, _, e, f, *_ = renderer.transform
    assert (c, f) == renderer.origin and a == e == renderer.pitch
    assert c + board.COLS * a <= 640 and f + board.ROWS * e <= 480 and f >= renderer.band
    for corners in renderer.qr_codes:
        assert len(corners) == 4
        assert all(0 <= x < 640 and renderer.band <= y < 480 for x, y in corners)


@pytest.mark.parametrize(("size", "quality"), [((16, 16), 85), ((64, 64), 0), ((9000, 10), 85)])
def test_bad_options_are_refused(size: tuple[int, int], quality: int) -> None:
    with pytest.raises(RenderError):
        GridRenderer(size, quality)
