"""Build README.md from the sections in docs/.

The sections live in separate files so each part's documentation sits beside
the tests that run its examples; the README is their concatenation, and a test
fails when it is stale.

    python docs/build_readme.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
README = DOCS.parent / "README.md"
SECTIONS = (
    "intro.md",
    "rules.md",
    "recorders.md",
    "shots.md",
    "recording.md",
    "simulator.md",
    "logtools.md",
    "benchmarks.md",
    "architecture.md",
    "development.md",
)
NOTE = "<!-- Built from docs/*.md by docs/build_readme.py: edit those files, not this one. -->\n"


def build() -> str:
    parts = [(DOCS / name).read_text(encoding="utf-8").strip() + "\n" for name in SECTIONS]
    return NOTE + "\n" + "\n".join(parts)


def main(argv: list[str]) -> int:
    text = build()
    if "--check" in argv:
        if README.read_text(encoding="utf-8") != text:
            print("README.md is stale: run python docs/build_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(text, encoding="utf-8")
    print(f"wrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
