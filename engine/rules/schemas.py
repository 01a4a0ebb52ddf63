"""Which schema each source of a rule set speaks, known before its recorders and rules validate.

This is where schema files are read (the models only check their shape).

Recorders and message triggers name fields of their source's messages, so the
schemas must be known first: this looks at the sources sections of every
file up front. A source whose schema does not load counts as PurpleDrop's here;
its own validation then reports why, once, at its position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.core.fieldpath import FieldPath, FieldPathError
from engine.core.schema import PURPLEDROP, Schema, SchemaError
from engine.rules.model import SchemaConfig
from engine.rules.yamlpos import Document
from engine.schema_files import load_schema


@dataclass
class SchemaScope:
    """Schemas by source name, and the default source's name."""

    schemas: dict[str, Schema] = field(default_factory=dict)
    default_source: str | None = None

    @classmethod
    def of(cls, docs: Iterable[Document]) -> SchemaScope:
        scope = cls()
        names: list[str] = []
        for doc in docs:
            data = doc.data
            if not isinstance(data, dict):
                continue
            settings = data.get("settings")
            if isinstance(settings, dict) and isinstance(settings.get("source"), str):
                scope.default_source = settings["source"]
            sources = data.get("sources")
            if not isinstance(sources, dict):
                continue
            for name, entry in sources.items():
                names.append(str(name))
                schema = _schema_of(entry)
                if schema is not None:
                    scope.schemas[str(name)] = schema
        if scope.default_source is None and len(names) == 1:
            scope.default_source = names[0]
        return scope

    def schema(self, source: str | None) -> Schema:
        name = source if source is not None else self.default_source
        if name is None:
            return PURPLEDROP
        return self.schemas.get(name, PURPLEDROP)

    def context(self, section: str, entry: Any) -> dict[str, Any] | None:
        """The pydantic validation context of one entry of ``section``."""
        if not self.schemas or section not in ("recorders", "rules"):
            return None
        source = entry.get("source") if isinstance(entry, Mapping) else None
        if section == "rules":
            source = None  # each trigger names its own source; the default serves the others
        return {
            "schema": self.schema(source if isinstance(source, str) else None),
            "schemas": self.schemas,
        }


def load_source_schema(config: SchemaConfig) -> Schema:
    """Load what a source's ``schema:`` names; ``SchemaError`` says what is wrong."""
    schema = load_schema(config.spec())
    if schema.image is not None:
        try:
            path = FieldPath(schema.image, schema)
        except FieldPathError as exc:
            raise SchemaError(f"image: {exc}") from None
        if path.leaf is None or path.type_name != "bytes":
            raise SchemaError(f"image: {schema.image} is a {path.type_name}, not bytes")
    config.set_schema(schema)
    return schema


def _schema_of(entry: Any) -> Schema | None:
    if not isinstance(entry, Mapping):
        return None
    kind = entry.get("type")
    if kind == "websocket" and isinstance(entry.get("schema"), Mapping):
        try:
            return load_source_schema(SchemaConfig.model_validate(entry["schema"]))
        except (ValidationError, ValueError):
            return None
    if kind == "replay" and isinstance(entry.get("path"), str):
        from engine.recording.schema import recording_schema

        try:
            return recording_schema(entry["path"])
        except (OSError, ValueError):
            return None
    return None
