"""Loading a schema a rule file names: a descriptor set file, or ``.proto`` files.

A descriptor set (``protoc --descriptor_set_out=lab.pb --include_imports
lab.proto``) needs nothing else. ``.proto`` files are compiled when the schema
loads, with the protoc bundled in ``grpcio-tools``; without it the error says
to install it or to write a descriptor set. Loads are cached by file, size and
modification time, so a source and every recorder of it share one schema.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from engine.core.schema import (
    MAX_DESCRIPTOR_SET,
    Schema,
    SchemaError,
    SchemaSpec,
    from_descriptor_set,
)

_CACHE: dict[tuple[object, ...], Schema] = {}
_CACHE_MAX = 64


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def load_schema(spec: SchemaSpec, base: str | os.PathLike[str] | None = None) -> Schema:
    """The schema ``spec`` describes; relative paths are from ``base`` (default: here)."""
    root = Path(base) if base is not None else Path.cwd()
    if (spec.descriptor_set is None) == (not spec.proto):
        raise SchemaError("a schema needs exactly one of descriptor_set or proto")
    files = [root / spec.descriptor_set] if spec.descriptor_set else [root / p for p in spec.proto]
    includes = [root / i for i in spec.include]
    key = (
        tuple(_stamp(f) for f in files),
        tuple(str(i) for i in includes),
        spec.message,
        spec.kind,
        spec.oneof,
        spec.image,
        spec.timestamp,
    )
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    if spec.descriptor_set:
        blob = _read_descriptor_set(files[0])
        origin = str(files[0])
    else:
        blob = compile_protos(files, includes)
        origin = ", ".join(str(f) for f in files)
    schema = from_descriptor_set(
        blob,
        spec.message,
        kind=spec.kind,
        oneof=spec.oneof,
        image=spec.image,
        timestamp=spec.timestamp,
        origin=origin,
    )
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = schema
    return schema


def _read_descriptor_set(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_DESCRIPTOR_SET:
            raise SchemaError(f"{path}: {size} bytes; a descriptor set is at most 16 MiB")
        return path.read_bytes()
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read: {exc.strerror or exc}") from None


def compile_protos(protos: Sequence[Path], includes: Sequence[Path] = ()) -> bytes:
    """A serialized descriptor set of ``protos`` and their imports, via grpcio-tools' protoc."""
    try:
        from grpc_tools import protoc
    except ImportError:
        raise SchemaError(
            "compiling .proto files needs grpcio-tools (pip install grpcio-tools); "
            "or give a descriptor set: protoc --descriptor_set_out=FILE.pb --include_imports ..."
        ) from None
    import importlib.resources

    for proto in protos:
        if not proto.is_file():
            raise SchemaError(f"{proto}: no such .proto file")
    dirs = [*includes, *{p.parent for p in protos}]
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory(prefix="cuecap-schema-") as tmp:
        out = Path(tmp) / "set.pb"
        args = [
            "protoc",
            *(f"-I{d}" for d in dirs),
            f"-I{well_known}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *(str(p) for p in protos),
        ]
        code = _run_protoc(protoc.main, args)
        if code != 0 or not out.exists():
            raise SchemaError(
                f"protoc could not compile {', '.join(str(p) for p in protos)} "
                f"(exit {code}; its messages are above)"
            )
        return out.read_bytes()


def _run_protoc(main: object, args: list[str]) -> int:
    """protoc prints its errors on stderr; they name file:line:column already."""
    return int(main(args))  # type: ignore[operator]
