"""JSON Schemas generated from the models: the spec (for editors) and the IR (for other tools)."""

from __future__ import annotations

import json
from pathlib import Path

SPEC_SCHEMA_FILE = "mlspec.v1.schema.json"
IR_SCHEMA_FILE = "mlspec-ir.v1.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def spec_schema() -> dict:
    from mlspec.spec.models import Spec

    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": DRAFT,
        "$id": f"https://mlspec.dev/schemas/{SPEC_SCHEMA_FILE}",
        "title": "mlspec MLSystem (mlops.yaml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def ir_schema() -> dict:
    from mlspec.ir.model import IR

    schema = IR.model_json_schema(mode="serialization")
    return {
        "$schema": DRAFT,
        "$id": f"https://mlspec.dev/schemas/{IR_SCHEMA_FILE}",
        "title": "mlspec intermediate representation v1",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    return {SPEC_SCHEMA_FILE: render(spec_schema()), IR_SCHEMA_FILE: render(ir_schema())}


def write_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(out_dir: Path) -> list[str]:
    stale = []
    for name, text in schema_files().items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    return stale
