"""Third-party schemas for tests: Foxglove's published protobuf messages, and a small lab schema.

The Foxglove messages come from the ``foxglove-schemas-protobuf`` package
(nobody here wrote them); their descriptor set is built the way ``protoc
--include_imports`` writes one, from the compiled files' own bytes.
"""

from __future__ import annotations

from pathlib import Path

from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.Log_pb2 import Log
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

T0 = 1_700_000_000


def descriptor_set(*files: FileDescriptor) -> bytes:
    """A ``FileDescriptorSet`` of ``files`` and their imports, imports first."""
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(f: FileDescriptor) -> None:
        if f.name in seen:
            return
        seen.add(f.name)
        for dep in f.dependencies:
            add(dep)
        out.file.append(descriptor_pb2.FileDescriptorProto.FromString(f.serialized_pb))

    for f in files:
        add(f)
    return out.SerializeToString()


def foxglove_set(tmp_path: Path) -> Path:
    """Both Foxglove messages' descriptor set, written as ``foxglove.pb``."""
    path = tmp_path / "foxglove.pb"
    path.write_bytes(descriptor_set(Log.DESCRIPTOR.file, CompressedImage.DESCRIPTOR.file))
    return path


def log_message(i: int, level: int, text: str) -> bytes:
    msg = Log(level=level, message=text, name="pump", file="pump.c", line=i)  # type: ignore[arg-type]
    msg.timestamp.seconds = T0 + i
    msg.timestamp.nanos = 250_000_000
    return msg.SerializeToString()


def log_stream(n: int) -> list[bytes]:
    """``n`` Foxglove ``Log`` messages: INFO mostly, a WARNING every 5th, an ERROR every 10th."""
    out = []
    for i in range(n):
        if i % 10 == 9:
            out.append(log_message(i, Log.ERROR, f"pressure high {i}"))
        elif i % 5 == 4:
            out.append(log_message(i, Log.WARNING, f"disk at {80 + i % 20}%"))
        else:
            out.append(log_message(i, Log.INFO, f"tick {i}"))
    return out


def jpeg(width: int = 32, height: int = 24, shade: int = 100) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 50, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def image_message(i: int, data: bytes) -> bytes:
    msg = CompressedImage(frame_id="cam", format="jpeg", data=data)
    msg.timestamp.seconds = T0 + i
    return msg.SerializeToString()


LAB_PROTO = """\
syntax = "proto3";
package lab;

import "google/protobuf/timestamp.proto";

message Reading {
  google.protobuf.Timestamp timestamp = 1;
  double celsius = 2;
  repeated double channels = 3;
}

message Alarm {
  google.protobuf.Timestamp timestamp = 1;
  string text = 2;
  uint32 severity = 3;
}

message Event {
  uint64 seq = 1;
  oneof body {
    Reading reading = 10;
    Alarm alarm = 11;
  }
}
"""


def lab_proto(tmp_path: Path) -> Path:
    path = tmp_path / "lab.proto"
    path.write_text(LAB_PROTO, encoding="utf-8")
    return path
