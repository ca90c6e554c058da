"""The backend without Airflow: literals, determinism, formatting, the capability table and the seam."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow_support import EVIL, churn_data, emit, evil_data, ir_from, write, yaml_text
from hypothesis import given
from hypothesis import strategies as st
from mlspec_airflow import AirflowBackend, pyliteral

import mlspec
from mlspec.backends import Feature, load_backend

RUFF = [str(Path(sys.executable).parent / "ruff")]
RUFF_OPTS = ["--isolated", "--line-length", "110", "--target-version", "py311"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, st.integers(min_value=0, max_value=40))
def test_literal_evaluates_back_to_the_value(value, indent):
    assert ast.literal_eval(pyliteral.flat(value)) == value
    assert ast.literal_eval(pyliteral.literal(value, indent)) == value
    assert ast.literal_eval(pyliteral.call("tuple", [value], indent).removeprefix("tuple")) == [value]


def test_entry_point_loads_the_backend():
    backend = load_backend("airflow")
    assert isinstance(backend, AirflowBackend)
    # importing the backend must not import Airflow:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, mlspec_airflow; print('airflow' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_byte_identical_across_compiles_and_hash_seeds(churn_ir, tmp_path):
    first, _ = emit(churn_ir)
    again, _ = emit(churn_ir)
    assert first == again
    script = (
        "import mlspec, sys; from mlspec.backends import EmitContext; from mlspec_airflow import AirflowBackend\n"
        "ir = mlspec.lower(mlspec.load(sys.argv[1]))\n"
        "for a in sorted(AirflowBackend().emit(ir, EmitContext(allow_unsupported=True)), key=lambda a: a.path):\n"
        "    sys.stdout.buffer.write(a.data())\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, "specs/churn.yaml"],
            cwd=Path(__file__).parents[3],
            # the same code as this process imports (a checkout's PYTHONPATH), under another hash seed
            env={"PYTHONHASHSEED": seed, "PATH": "", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert b"".join(first[k] for k in sorted(first)) in outputs


def test_emits_training_monitoring_and_ir(churn_ir):
    files, ctx = emit(churn_ir)
    assert sorted(files) == ["churn_monitoring.py", "churn_training.py", "ir.json"]
    assert files["ir.json"].decode() == churn_ir.to_json()
    assert not ctx.diagnostics  # kubernetes mode expresses everything churn uses


def test_mode_comes_from_the_ir_unless_the_option_overrides(churn_ir):
    spec_mode, _ = emit(churn_ir)
    assert b"KubernetesPodOperator(" in spec_mode["churn_training.py"]
    local, _ = emit(churn_ir, "local")
    assert b"KubernetesPodOperator" not in local["churn_training.py"]
    assert b"subprocess.run(" in local["churn_training.py"]
    data = churn_data()
    data["orchestration"] = {"airflow_mode": "local"}
    assert emit(ir_from(data))[0]["churn_training.py"] == local["churn_training.py"]


def test_generated_code_is_ruff_clean_and_has_no_absolute_paths(churn_ir, evil_ir, tmp_path):
    for name, ir in (("churn", churn_ir), ("evil", evil_ir)):
        for mode in ("kubernetes", "local"):
            folder = write(emit(ir, mode)[0], tmp_path / name / mode)
            for py in folder.glob("*.py"):
                text = py.read_text()
                assert "/work/" not in text and "/tmp" not in text and "/home/" not in text
    fmt = subprocess.run(
        [*RUFF, "format", "--check", "--diff", *RUFF_OPTS, str(tmp_path)], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    check = subprocess.run(
        [*RUFF, "check", *RUFF_OPTS, "--select", "E,F,W,I,B,UP,SIM,RUF", "--ignore", "E501", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_spec_strings_are_literals_not_code(evil_ir):
    for mode in ("kubernetes", "local"):
        files, _ = emit(evil_ir, mode)
        for name in ("evil_training.py", "evil_monitoring.py"):
            tree = ast.parse(files[name].decode())
            calls = {
                node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                for node in ast.walk(tree)
                if isinstance(node, ast.Call)
            }
            assert "__import__" not in calls and "system" not in calls
            strings = [
                n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
            assert any(EVIL in s for s in strings), (mode, name)


def test_unsupported_features_come_from_the_capability_table(churn_ir):
    _, ctx = emit(churn_ir, "local")
    where = sorted(d.message.split("(at ")[1].rstrip(")") for d in ctx.diagnostics)
    assert where == ["pipelines.training.steps.train", "pipelines.training.steps.tune-trial"]
    assert all("step.gpu" in d.message and d.code == "MS301" for d in ctx.diagnostics)
    _, strict = emit(churn_ir, "local", allow_unsupported=False)
    assert {d.severity.name for d in strict.diagnostics} == {"ERROR"}

    data = churn_data()
    data["steps"] = [
        {"name": "report", "command": ["python", "report.py"], "after": "evaluate", "cache": True}
    ]
    data["training"]["distributed"] = {"workers": 2}
    ir = ir_from(data)
    _, ctx = emit(ir)
    backend = AirflowBackend()
    predicted = [(u.feature, u.where) for u, _ in backend.check(ir, {})]
    # training over two nodes is expressed: the train task launches the workers' job and waits for it
    assert sorted(predicted) == [(Feature.STEP_CACHE, "pipelines.training.steps.report")]
    assert len(ctx.diagnostics) == len(predicted)  # compile reports nothing that check() does not predict


@pytest.mark.parametrize("mode", ["kubernetes", "local"])
def test_lint_predicts_exactly_what_compile_reports(mode):
    data = churn_data()
    data["targets"] = ["airflow"]
    data["orchestration"] = {"airflow_mode": mode}
    data["steps"] = [
        {"name": "report", "command": ["python", "report.py"], "after": "evaluate", "cache": True}
    ]
    gpu = (
        ["step.gpu", "step.gpu"] if mode == "local" else []
    )  # train and tune-trial, both at training.resources
    loaded = mlspec.loads(yaml_text(data), "specs/churn.yaml")
    linted = [d for d in mlspec.lint(loaded) if d.code == "MS301"]
    compiled = mlspec.compile(loaded, ["airflow"], allow_unsupported=True).diagnostics
    assert sorted((d.message, d.location.line, d.key_path) for d in compiled) == sorted(
        (d.message, d.location.line, d.key_path) for d in linted
    )
    assert len({d.location.line for d in linted}) == len(linted) - len(gpu) // 2  # located at their keys
    features = sorted(d.message.split(" cannot express ")[1].split(":")[0] for d in linted)
    assert features == sorted(["step.cache", *gpu])


def test_asset_triggers_without_a_monitoring_pipeline_never_reach_the_backend():
    data = churn_data()
    del data["monitoring"]
    assert "MS205" in {d.code for d in mlspec.lint(mlspec.loads(json.dumps(data), "spec.yaml"))}
    ir = mlspec.lower(mlspec.loads(json.dumps(data), "spec.yaml"))
    with pytest.raises(AssertionError, match="no monitoring step emits the retrain asset event"):
        emit(ir)


def test_user_step_with_a_reserved_name_gets_a_safe_variable():
    data = evil_data()
    data["steps"][0]["name"] = "list"
    files, _ = emit(ir_from(data), "local")
    text = files["evil_training.py"].decode()
    assert "list_task = run_step.override(" in text and 'task_id="list"' in text
    compile(text, "evil_training.py", "exec")


def test_training_over_nodes_makes_the_train_pod_a_launcher():
    """Workers spanning nodes: the train pod is the IR's small launcher placement (no GPU) and mounts its
    service account token, to create the job the kubernetes target declares; no other pod does."""
    data = churn_data()
    data["training"]["distributed"] = {"workers": 2}
    ir = ir_from(data)
    assert ir.training.distribution.nodes == 2
    files, _ = emit(ir, "kubernetes", allow_unsupported=False)
    tree = ast.parse(files["churn_training.py"].decode())
    calls = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "KubernetesPodOperator",
            "partial",
        ):
            keywords = {kw.arg: kw.value for kw in node.keywords}
            calls[ast.literal_eval(keywords["task_id"])] = keywords
    launcher = calls["train"]
    assert ast.literal_eval(launcher["automount_service_account_token"]) is True
    assert "nvidia.com/gpu" not in ast.unparse(launcher["container_resources"])
    assert not [t for t, kw in calls.items() if t != "train" and "automount_service_account_token" in kw]
