"""Data preparation under its contract, through the step entry point (`python -m mlspec.runtime STEP`):
user steps get their inputs and have their outputs checked, validate-data checks and splits the prepared
data, user commands run with the runtime's interpreter, and serving transforms must agree with the data."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import mlspec
from mlspec.runtime import StepError, preprocessing
from mlspec.runtime.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "specs" / "shop.yaml"


def _ir(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ir.json"
    path.write_text(mlspec.lower(mlspec.loads(text, "specs/shop.yaml")).to_json())
    return path


def run_step(step: str, ir: Path, run: Path) -> dict:
    main([step, "--ir", str(ir), "--run-dir", str(run)])
    return json.loads((run / "steps" / step / "result.json").read_text())


@pytest.fixture()
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the example's data paths and its step module are relative to the project root


def test_duplicates_go_before_the_split_and_a_new_feature_reaches_the_training_data(
    tmp_path: Path, at_root: None
) -> None:
    ir, run = _ir(tmp_path, SHOP.read_text()), tmp_path / "run"
    raw = pd.read_csv(ROOT / "data" / "shop" / "train.csv")
    assert raw["customer_id"].duplicated().sum() == 200  # the export repeats 200 customers

    assert run_step("validate-raw", ir, run)["status"] == "succeeded"
    deduped = run_step("dedupe", ir, run)
    assert deduped["status"] == "succeeded"
    assert deduped["inputs"] == {"train": {"version": "source", "rows": 4200}}
    assert deduped["outputs"]["train"]["rows"] == 4000
    enriched = run_step("enrich", ir, run)
    assert enriched["inputs"] == {"train": {"version": "dedupe", "rows": 4000}}
    assert "spend_per_order" in enriched["outputs"]["train"]["columns"]

    validated = run_step("validate-data", ir, run)
    assert validated["status"] == "succeeded", validated.get("error")
    assert validated["data"]["train"]["prepared_by"] == "enrich"
    uniqueness = next(c for c in validated["checks"] if c["check"] == "uniqueness")
    assert uniqueness["passed"]
    train = pd.read_parquet(run / "data" / "train.parquet")
    test = pd.read_parquet(run / "data" / "test.parquet")
    assert not set(train["customer_id"]) & set(test["customer_id"])  # no customer on both sides
    assert (train["spend_per_order"] == (train["total_spend"] / train["orders"]).round(4)).all()


def test_without_the_dedupe_step_the_prepared_data_fails_uniqueness(tmp_path: Path, at_root: None) -> None:
    text = SHOP.read_text()
    start, end = text.index("  - name: dedupe\n"), text.index("  - name: enrich\n")
    text = text[:start] + text[end:].replace("    after: dedupe\n", "")
    ir, run = _ir(tmp_path, text), tmp_path / "run"
    assert run_step("enrich", ir, run)["status"] == "succeeded"
    validated = run_step("validate-data", ir, run)
    assert validated["status"] == "failed"
    assert "uniqueness failed in customer_id" in validated["error"]
    assert not (run / "data" / "train.parquet").exists()  # nothing was split


def _with_step(step: str) -> str:
    text = SHOP.read_text()
    return text.replace("\ntraining:\n", "\n" + textwrap.indent(step, "  ") + "\ntraining:\n", 1)


def test_an_output_that_breaks_its_schema_fails_its_step(tmp_path: Path, at_root: None) -> None:
    script = "import pandas as p, sys; d = p.read_parquet(sys.argv[1]); d.assign(orders=-d.orders).drop(columns=['country']).to_parquet(sys.argv[2])"
    text = _with_step(
        "- name: negate\n"
        f"  command: [python, -c, {json.dumps(script)}, '{{inputs.train}}', '{{outputs.train}}']\n"
        "  inputs: [train]\n"
        "  outputs: {train: {}}\n"
        "  after: enrich\n"
    )
    ir, run = _ir(tmp_path, text), tmp_path / "run"
    for step in ("dedupe", "enrich"):
        assert run_step(step, ir, run)["status"] == "succeeded"
    failed = run_step("negate", ir, run)
    assert failed["status"] == "failed"
    assert "output 'train' does not match its schema" in failed["error"]
    assert "country" in failed["error"] and "orders" in failed["error"]


def test_user_commands_run_with_the_runtime_interpreter_not_the_path_one(
    tmp_path: Path, at_root: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text("#!/bin/sh\necho 'not the runtime interpreter' >&2\nexit 3\n")
    (fake / "python").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    script = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(sys.executable)"
    text = _with_step(
        f"- name: which\n  command: [python, -c, {json.dumps(script)}, '{{outputs.interpreter}}']\n"
    )
    ir, run = _ir(tmp_path, text), tmp_path / "run"
    assert run_step("which", ir, run)["status"] == "succeeded"
    assert (run / "steps" / "which" / "outputs" / "interpreter").read_text() == sys.executable


def test_serving_transforms_must_agree_with_the_prepared_data(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "shop_features.py").write_text(
        "def faithful(f):\n    return f.assign(ratio=f.a / f.b)\n\n"
        "def drifted(f):\n    return f.assign(ratio=f.a / f.b + 0.5)\n"
    )
    monkeypatch.chdir(tmp_path)
    prepared = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0, 5.0]}).assign(ratio=lambda f: f.a / f.b)
    spec = {"transforms": [{"step": "enrich", "function": "shop_features:faithful", "adds": ["ratio"]}]}
    assert preprocessing.transform_parity(spec, prepared, 1e-6) == 0.0
    spec["transforms"][0]["function"] = "shop_features:drifted"
    with pytest.raises(StepError, match=r"column 'ratio' recomputed from raw rows differs .* by 0\.5"):
        preprocessing.transform_parity(spec, prepared, 1e-6)


def test_the_committed_shop_data_is_what_make_data_writes() -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(ROOT / "data" / "shop" / "make_data.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
