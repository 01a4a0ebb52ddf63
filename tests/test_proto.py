"""The schema must stay wire-compatible with PurpleDrop's pdserver.

The byte strings here are built by hand from the field-number table in
purpledrop-wire.md, not by our own encoder, so a renumbered or retyped field
fails these tests even if encode/decode still round-trip.
"""

from __future__ import annotations

import filecmp
import struct
from pathlib import Path

import pytest

from engine.core.frame import KINDS, Frame, FrameDecodeError, peek_kind
from engine.proto import generate
from engine.proto.purpledrop_pb2 import PurpleDropEvent


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def length_delimited(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def f32(field: int, value: float) -> bytes:
    return key(field, 5) + struct.pack("<f", value)


def timestamp(field: int, seconds: int, nanos: int) -> bytes:
    return length_delimited(field, key(1, 0) + varint(seconds) + key(2, 0) + varint(nanos))


def test_oneof_field_numbers_match_the_wire_table() -> None:
    assert KINDS == {
        1: "electrode_layout",
        2: "electrode_state",
        3: "image",
        4: "image_transform",
        5: "settings",
        6: "scan_capacitance",
        7: "active_capacitance",
        8: "hv_regulator",
        9: "temperature_control",
        10: "device_info",
        11: "group_capacitance",
        12: "duty_cycle_updated",
    }


def test_active_capacitance_decodes_from_hand_built_bytes() -> None:
    inner = timestamp(1, 1_700_000_000, 250_000_000) + f32(3, 1.5) + f32(4, 2.25) + f32(5, 0.75)
    raw = length_delimited(7, inner)
    frame = Frame(raw, time=10.0, seq=0)
    assert frame.kind == "active_capacitance"
    msg = frame.message
    assert (msg.baseline, msg.measurement, msg.calibrated) == (1.5, 2.25, 0.75)
    assert frame.timestamp == pytest.approx(1_700_000_000.25)


def test_electrode_state_with_packed_groups() -> None:
    # ElectrodeGroup: 1 electrodes repeated bool (packed), 2 setting uint32
    bools = bytes([1, 0, 1, 1])
    group = length_delimited(1, bools) + key(2, 0) + varint(7)
    inner = timestamp(1, 5, 0) + length_delimited(3, group) + length_delimited(4, group)
    event = PurpleDropEvent.FromString(length_delimited(2, inner))
    state = event.electrode_state
    assert list(state.drive_groups[0].electrodes) == [True, False, True, True]
    assert state.drive_groups[0].setting == 7
    assert len(state.scan_groups) == 1
    assert list(state.electrodes) == []


def test_scan_capacitance_and_image_transform_nested_messages() -> None:
    measurement = f32(1, 3.0) + key(2, 0) + varint(1) + f32(3, 99.0)
    scan = length_delimited(6, timestamp(1, 1, 0) + length_delimited(2, measurement) * 2)
    event = PurpleDropEvent.FromString(scan)
    assert [m.capacitance for m in event.scan_capacitance.measurements] == [3.0, 3.0]
    assert event.scan_capacitance.measurements[0].drop_present is True

    point = key(1, 0) + varint(10) + key(2, 0) + varint(20)
    qr = length_delimited(1, point)
    transform = struct.pack("<9f", *range(9))
    inner = (
        timestamp(1, 2, 0)
        + length_delimited(2, transform)
        + length_delimited(3, qr)
        + key(4, 0)
        + varint(1024)
        + key(5, 0)
        + varint(768)
    )
    it = PurpleDropEvent.FromString(length_delimited(4, inner)).image_transform
    assert list(it.transform) == [float(i) for i in range(9)]
    assert (it.qr_codes[0].corners[0].x, it.qr_codes[0].corners[0].y) == (10, 20)
    assert (it.image_width, it.image_height) == (1024, 768)


def test_hv_temperature_and_device_info_field_order() -> None:
    hv = PurpleDropEvent.FromString(
        length_delimited(8, f32(1, 150.0) + f32(2, 2.5) + timestamp(3, 9, 0))
    )
    assert (hv.hv_regulator.voltage, hv.hv_regulator.v_target_out) == (150.0, 2.5)
    assert hv.hv_regulator.timestamp.seconds == 9
    temps = length_delimited(1, struct.pack("<2f", 25.0, 26.5)) + length_delimited(
        2, struct.pack("<2f", 0.5, 0.25)
    )
    tc = PurpleDropEvent.FromString(length_delimited(9, temps)).temperature_control
    assert list(tc.temperatures) == [25.0, 26.5]
    assert list(tc.duty_cycles) == [0.5, 0.25]
    info = key(1, 0) + varint(1) + length_delimited(2, b"PD-42") + length_delimited(3, b"1.2.3")
    frame = Frame(length_delimited(10, info), time=0.0, seq=0)
    assert frame.kind == "device_info"
    assert frame.message.serial_number == "PD-42"
    assert frame.timestamp is None  # device_info carries no timestamp


def test_group_capacitance_duty_cycles_layout_settings_image() -> None:
    gc = length_delimited(
        11,
        length_delimited(2, struct.pack("<3f", 1, 2, 3))
        + length_delimited(3, struct.pack("<1f", 4)),
    )
    assert list(PurpleDropEvent.FromString(gc).group_capacitance.measurements) == [1, 2, 3]
    dc = length_delimited(12, length_delimited(2, varint(5) + varint(300)))
    assert list(PurpleDropEvent.FromString(dc).duty_cycle_updated.duty_cycles) == [5, 300]
    layout = length_delimited(1, length_delimited(2, b"grid"))
    assert PurpleDropEvent.FromString(layout).electrode_layout.layout == "grid"
    settings = length_delimited(5, f32(2, 500.0))
    assert PurpleDropEvent.FromString(settings).settings.frequency == 500.0
    jpeg = b"\xff\xd8jpeg\xff\xd9"
    image = Frame(length_delimited(3, timestamp(1, 3, 5) + length_delimited(2, jpeg)), 0.0, 0)
    assert image.kind == "image"
    assert image.message.image_data == jpeg


def test_peek_kind_without_decoding() -> None:
    assert peek_kind(b"") is None
    assert peek_kind(b"\x00\x01") is None
    assert peek_kind(length_delimited(12, b"")) == "duty_cycle_updated"


def test_garbage_is_reported_once_and_not_raised_twice_differently() -> None:
    frame = Frame(b"\x3a\xff\xff\xff\xff\x0f", time=0.0, seq=3)
    assert frame.kind == "active_capacitance"  # the peek is only a classification
    assert frame.valid is False
    with pytest.raises(FrameDecodeError, match="frame 3"):
        _ = frame.event
    with pytest.raises(FrameDecodeError, match="frame 3"):
        _ = frame.message


def test_generated_module_matches_the_proto(tmp_path: Path) -> None:
    written = generate.generate(tmp_path)
    here = Path(generate.__file__).parent
    for path in written:
        committed = here / path.name
        assert filecmp.cmp(path, committed, shallow=False), (
            f"{committed.name} is stale: run `python engine/proto/generate.py` and commit"
        )
