"""The JSON Schema of rule files, for editors (completion, checks while typing).

Generated from the pydantic models, so it never drifts from what the loader
accepts; ``rules/cuecap.schema.json`` is the published copy (a test keeps it
equal to this output).
"""

from __future__ import annotations

import json
from typing import Any

from engine.rules.model import RuleFile


def rule_file_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema(by_alias=True, mode="validation")
    schema.pop("title", None)
    schema.pop("description", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cuecap rule file",
        "description": "Settings, sources, cameras, recorders and rules of cuecap. Several files "
        "merge; a name may be declared once across them.",
        **schema,
    }


def schema_text() -> str:
    return json.dumps(rule_file_schema(), indent=2, sort_keys=False) + "\n"
