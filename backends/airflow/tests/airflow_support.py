"""Helpers for the Airflow backend tests: compiling DAG folders, a hostile spec, and the Airflow CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from mlspec_airflow import AirflowBackend

import mlspec
from mlspec.backends import EmitContext

ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
# Every hostile shape at once: quotes, a newline, triple quotes, Jinja, shell and Python injection.
EVIL = "it's \"q\" \"\"\" {{ 7 * 7 }} {% raw %} ${} ${ HOME } $(id) `id` __import__('os').system('id')\nline2 \\ end"


def emit(ir, mode: str | None = None, allow_unsupported: bool = True) -> tuple[dict[str, bytes], EmitContext]:
    ctx = EmitContext(allow_unsupported=allow_unsupported, options={"airflow_mode": mode} if mode else {})
    return {a.path: a.data() for a in AirflowBackend().emit(ir, ctx)}, ctx


def write(files: dict[str, bytes], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def churn_data() -> dict:
    from ruamel.yaml import YAML

    return json.loads(json.dumps(YAML(typ="safe").load((ROOT / "specs" / "churn.yaml").read_text())))


def yaml_text(data: dict) -> str:
    """Spec data as block YAML: one key per line, so diagnostics have distinct locations."""
    import io

    from ruamel.yaml import YAML

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, out)
    return out.getvalue()


def ir_from(data: dict, name: str = "spec.yaml"):
    return mlspec.lower(mlspec.loads(json.dumps(data), name))


def evil_data() -> dict:
    data = churn_data()
    data["metadata"].update(name="evil", description=EVIL, owner=EVIL, labels={"evil": EVIL})
    data["images"]["runtime"] = "registry.example/evil:" + EVIL
    data["training"]["hyperparameters"]["evil"] = EVIL
    script = (
        "import json, os, sys; "
        "json.dump({'argv': sys.argv[1:-1], 'env': os.environ['EVIL']}, open(sys.argv[-1], 'w'))"
    )
    data["steps"] = [
        {
            "name": "evil-step",
            "command": ["python", "-c", script, EVIL, "{{ ds }}", "{outputs.proof}"],
            "env": {"EVIL": EVIL},
            "before": "validate-data",
            "cache": False,
        }
    ]
    return data


def airflow(args: list[str], env: dict[str, str], timeout: int = 900) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "airflow"), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def task_states(env: dict[str, str], dag_id: str) -> dict[tuple[str, int], str]:
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        rows = db.execute("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ?", (dag_id,))
        return {(task, index): state for task, index, state in rows}
