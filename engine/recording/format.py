"""Names and layouts of the recording files.

``NAME.bin`` holds PurpleDrop ``pdrecord`` records: ``<I`` length then the raw
protobuf bytes, exactly as received, no header, so PurpleDrop's own reader
still reads our files. Beside it:

- ``NAME.bin.idx``: an 8-byte magic, then one ``<Qd`` (byte offset of the
  record, receive time in epoch seconds) per record;
- ``NAME.bin.json``: the manifest (who recorded, from where, when, how many,
  why it started and stopped, the gaps).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from engine.errors import CuecapError

RECORD_HEADER = struct.Struct("<I")
INDEX_MAGIC = b"CUEIDX\x00\x01"
INDEX_ENTRY = struct.Struct("<Qd")
MANIFEST_FORMAT = "cuecap-recording/1"
MAX_RECORD = 0xFFFFFFFF
MCAP_MAGIC = b"\x89MCAP0\r\n"


def index_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{path}.idx")


def manifest_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{path}.json")


def companion_paths(path: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The recording, its index and its manifest."""
    data = Path(path)
    return data, index_path(data), manifest_path(data)


def remove_recording(path: str | os.PathLike[str]) -> list[Path]:
    """Delete a recording and its index and manifest, for replacing it; returns what was removed.

    Only regular files are removed: a folder of that name is left for the
    writer to refuse with its own error.
    """
    removed = []
    for part in companion_paths(path):
        if part.is_file() or part.is_symlink():
            part.unlink()
            removed.append(part)
    return removed


class RecordingError(CuecapError, OSError):
    """A recording that cannot be written or read; the message says which file and why."""


# Bytes of a manifest read at most: ours are a few KiB, one with its schema a few
# MiB; a bigger one is no manifest of ours.
MAX_MANIFEST = 64 * 1024 * 1024


def check_readable(path: Path) -> int:
    """The size of the recording at ``path``; ``RecordingError`` when there is none to read."""
    if not path.exists():
        raise RecordingError(f"{path}: no such recording")
    if path.is_dir():
        raise RecordingError(f"{path}: is a folder, not a recording")
    return path.stat().st_size


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON object in the manifest file ``path``; None when missing or unreadable.

    Unreadable: over ``MAX_MANIFEST`` bytes (checked before reading), not
    UTF-8, not JSON, nested deeper than the parser's stack, or not an object.
    Every reader of manifests goes through here, so none can be made to fail.
    """
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_MANIFEST:
                return None
            raw = f.read()  # sized by the file: read(n) would set aside n bytes first
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
