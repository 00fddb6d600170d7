"""The event contract as documents: one JSON Schema per event type and an AsyncAPI file.

Everything here is derived from the code that defines the wire contract, so the documents
cannot say something the service does not do. `schemas` describes each event type's whole
CloudEvent as JSON Schema 2020-12; `asyncapi` describes the topic exchange, its routing keys
and the unroutable queue as AsyncAPI 3.0, each message's payload a reference to its schema.

`documents()` renders every file as text, deterministically (sorted keys, fixed layout,
trailing newline), so a test can compare the checked-in files with it byte for byte.
`main()` is the only part that touches the disk: `python -m watcher.contract` rewrites
docs/, and `--check` only reports files that differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from watcher.contract import asyncapi, schemas
from watcher.contract.asyncapi import CHANNEL, UNROUTABLE_CHANNEL
from watcher.contract.schemas import resolve, schema_id, schema_path
from watcher.core import events

__all__ = [
    "ASYNCAPI_FILE",
    "CHANNEL",
    "DOCS",
    "UNROUTABLE_CHANNEL",
    "differing",
    "documents",
    "main",
    "resolve",
    "schema_id",
    "schema_path",
    "stale",
]

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
ASYNCAPI_FILE = "asyncapi.yaml"


def documents() -> dict[str, str]:
    """Every generated file, by path relative to docs/, as the exact text to write."""
    files = {
        schemas.schema_path(event.type): _json_text(schemas.event_schema(event))
        for event in events.EVENT_TYPES
    }
    files[ASYNCAPI_FILE] = _yaml_text(asyncapi.document())
    return files


def _json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _yaml_text(document: dict[str, Any]) -> str:
    return yaml.safe_dump(
        document, sort_keys=True, allow_unicode=True, default_flow_style=False, width=100
    )


def stale(directory: Path, expected: dict[str, str]) -> list[Path]:
    """Schema files in `directory` that no event type produces any more."""
    existing = sorted((directory / schemas.SCHEMA_DIR).glob("**/*.json"))
    return [path for path in existing if path.relative_to(directory).as_posix() not in expected]


def differing(directory: Path, expected: dict[str, str]) -> list[str]:
    """The generated files that are missing from `directory` or differ from `expected`."""
    return [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    """Write docs/ (or, with --check, report what is out of date and return 1)."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: python -m watcher.contract [--check]", file=sys.stderr)
        return 2
    expected = documents()
    if args:
        outdated = differing(DOCS, expected) + [str(p) for p in stale(DOCS, expected)]
        for name in outdated:
            print(f"out of date: {name}; run `python -m watcher.contract`", file=sys.stderr)
        return 1 if outdated else 0
    for path in stale(DOCS, expected):
        path.unlink()
        if not any(path.parent.iterdir()):
            path.parent.rmdir()
    for name, text in expected.items():
        (DOCS / name).parent.mkdir(parents=True, exist_ok=True)
        (DOCS / name).write_text(text)
    return 0
