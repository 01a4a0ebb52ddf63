"""The schema of a recording, found without being told: the manifest says it.

A recording of a source with its own schema keeps that schema (its message
name, kind rule and serialized descriptor set) under ``schema`` in its
manifest; a file without one (a ``pdrecord`` file, or any recording of a
PurpleDrop) is PurpleDrop's. MCAP files carry their schemas themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.core.schema import PURPLEDROP, Schema
from engine.recording.format import MCAP_MAGIC, manifest_path, read_manifest

_CACHE: dict[tuple[str, int, int], Schema] = {}
_CACHE_MAX = 64


def is_mcap(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the MCAP magic."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MCAP_MAGIC)) == MCAP_MAGIC
    except OSError:
        return False


def recording_schema(path: str | os.PathLike[str]) -> Schema:
    """The schema of the recording at ``path`` (PurpleDrop's when its manifest names none)."""
    if is_mcap(path):
        from engine.recording.mcap import mcap_schema

        return mcap_schema(path)
    manifest = manifest_path(Path(path))
    try:
        st = manifest.stat()
    except OSError:
        return PURPLEDROP
    key = (str(manifest.resolve()), st.st_size, st.st_mtime_ns)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    schema = schema_from_manifest(manifest)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = schema
    return schema


def schema_from_manifest(manifest: Path) -> Schema:
    data = read_manifest(manifest)  # None when unreadable: the log tools say so themselves
    entry = data.get("schema") if data is not None else None
    if not isinstance(entry, dict):
        return PURPLEDROP
    return Schema.from_dict(entry, origin=str(manifest))
