"""Regenerate ``purpledrop_pb2.py`` and ``.pyi`` from ``purpledrop.proto``.

The generated module is committed so users need no protoc; a test runs this
into a temporary folder and fails on any difference, so the two never drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.errors import InvalidState

HERE = Path(__file__).resolve().parent
PROTO = "purpledrop.proto"


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) into ``out_dir``; return the files written."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    code = protoc.main(
        ["protoc", f"-I{HERE}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", PROTO]
    )
    if code != 0:
        raise InvalidState(f"protoc failed with exit code {code}")
    return [out_dir / "purpledrop_pb2.py", out_dir / "purpledrop_pb2.pyi"]


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
