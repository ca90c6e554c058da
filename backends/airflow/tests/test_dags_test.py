"""`airflow dags test` runs the local-mode DAGs against the real runtime, SQLite metadata DB and MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow_support import EVIL, ROOT, airflow, churn_data, emit, evil_data, ir_from, task_states, write

pytestmark = pytest.mark.engine


def compile_local(data: dict, folder: Path, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    ir = ir_from(data)
    write(emit(ir, "local")[0], folder)
    prefix = f"AIRFLOW_VAR_MLSPEC_{ir.system.name.upper()}"
    return {
        **env,
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        f"{prefix}_WORKDIR": str(ROOT),  # the example data paths are relative to the project root
        f"{prefix}_RUNS_ROOT": str(tmp_path / "runs"),
    }


def model_versions(tmp_path: Path, name: str) -> list[int]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the process-wide registry URI
    return sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))


def test_training_dag_runs_end_to_end_and_registers(airflow_home, tmp_path):
    data = churn_data()
    data["training"]["tuning"]["trials"] = 2  # still a mapped fan-out, in less time
    data["training"]["hyperparameters"]["epochs"] = 2
    env = compile_local(data, tmp_path / "dags", airflow_home, tmp_path)
    airflow(["dags", "test", "churn_training"], env)
    states = task_states(env, "churn_training")
    assert states == {
        **{
            (t, -1): "success"
            for t in (
                "validate_data",
                "tune_select",
                "train",
                "evaluate",
                "check_gates_passed",
                "check_beats_champion",
                "export",
                "register",
                "promote",
            )
        },
        ("tune_trial", 0): "success",
        ("tune_trial", 1): "success",
    }
    assert model_versions(tmp_path, "churn") == [1]
    run = next((tmp_path / "runs" / "churn_training").iterdir())
    assert json.loads((run / "steps" / "evaluate" / "result.json").read_text())["gates_passed"] is True


def test_failing_gate_skips_registration_and_user_steps_get_hostile_strings_verbatim(airflow_home, tmp_path):
    # One run proves both (each `airflow dags test` costs a minute of runtime steps): the hostile spec, with
    # a gate no model passes and no tuning.
    data = evil_data()
    data["training"].pop("tuning")
    data["training"]["hyperparameters"]["epochs"] = 1
    data["evaluation"]["gates"] = [{"metric": "auc", "min": 0.9999}]
    env = compile_local(data, tmp_path / "dags", airflow_home, tmp_path)
    airflow(["dags", "test", "evil_training"], env)
    states = task_states(env, "evil_training")
    assert {t: s for (t, _), s in states.items()} == {
        "evil_step": "success",
        "validate_data": "success",
        "train": "success",
        "evaluate": "success",
        "check_gates_passed": "success",
        "check_beats_champion": "success",
        "export": "skipped",
        "register": "skipped",
        "promote": "skipped",
    }
    assert model_versions(tmp_path, "churn") == []
    [proof] = (tmp_path / "runs" / "evil_training").glob("*/steps/evil-step/outputs/proof")
    assert json.loads(proof.read_text()) == {"argv": [EVIL, "{{ ds }}"], "env": EVIL}


def test_shop_preparation_steps_run_before_the_split(airflow_home, tmp_path):
    """dedupe (a command) and enrich (a transform) run under their data contract on the worker; validate-data
    checks customer_id is unique on the prepared data and splits it; the model trains on the new feature."""
    from ruamel.yaml import YAML

    data = json.loads(json.dumps(YAML(typ="safe").load((ROOT / "specs" / "shop.yaml").read_text())))
    data["training"]["hyperparameters"]["epochs"] = 3
    env = compile_local(data, tmp_path / "dags", airflow_home, tmp_path)
    airflow(["dags", "test", "shop_training"], env)
    states = {t: s for (t, _), s in task_states(env, "shop_training").items()}
    assert set(states.values()) == {"success"}, states
    assert {"validate_raw", "dedupe", "enrich", "validate_data", "train", "promote"} <= set(states)
    run = next((tmp_path / "runs" / "shop_training").iterdir())
    deduped = json.loads((run / "steps" / "dedupe" / "result.json").read_text())
    assert deduped["outputs"]["train"]["rows"] == 4000
    validated = json.loads((run / "steps" / "validate-data" / "result.json").read_text())
    assert validated["data"]["train"]["prepared_by"] == "enrich"
    assert model_versions(tmp_path, "shop") == [1]
