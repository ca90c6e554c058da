"""Airflow parses the generated DAGs: zero import errors, and the DAGs carry exactly what the IR says."""

from __future__ import annotations

import datetime
import json

import pytest
from airflow_support import EVIL, emit, write

from mlspec import contracts

pytestmark = pytest.mark.engine


def dagbag(folder):
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3.3's file-parsing DagBag

    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    return bag


def expected_upstream(pipeline) -> dict[str, set[str]]:
    by_id = {s.id: s for s in pipeline.steps}
    out = {}
    for step in pipeline.steps:
        out[step.task_id] = {by_id[d].task_id for d in step.depends_on} | {
            f"check_{c.replace('-', '_')}" for c in step.conditions
        }
    for cond in pipeline.conditions:
        out[f"check_{cond.id.replace('-', '_')}"] = {by_id[cond.step].task_id}
    return out


@pytest.mark.parametrize("mode", ["kubernetes", "local"])
def test_dags_match_the_ir(churn_ir, tmp_path, mode):
    from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable
    from airflow.serialization.serialized_objects import DagSerialization

    bag = dagbag(write(emit(churn_ir, mode)[0], tmp_path))
    assert sorted(bag.dags) == ["churn_monitoring", "churn_training"]
    retrain = Asset(name="churn_retrain", uri=contracts.retrain_event_uri("churn"))
    for pipeline in churn_ir.pipelines:
        dag = bag.dags[f"churn_{pipeline.id}"]
        assert {t.task_id: set(t.upstream_task_ids) for t in dag.tasks} == expected_upstream(pipeline)
        for step in pipeline.steps:
            task = dag.get_task(step.task_id)
            assert task.retries == step.retries
            assert task.retry_delay == datetime.timedelta(seconds=step.retry_backoff_seconds)
            assert task.retry_exponential_backoff == 2.0
            assert task.execution_timeout == datetime.timedelta(seconds=step.timeout_seconds)
            if step.fan_out:
                assert task.max_active_tis_per_dagrun == step.fan_out.parallelism
                if mode == "kubernetes":
                    values = task.expand_input.value["arguments"]
                    assert all(v[-2:] == [step.fan_out.index_arg, str(i)] for i, v in enumerate(values))
                else:
                    values = task.op_kwargs_expand_input.value["trial"]
                    assert values == list(range(step.fan_out.count))
                assert len(values) == step.fan_out.count
        DagSerialization.to_dict(dag)  # the scheduler's form of the DAG must build too
    training = bag.dags["churn_training"]
    assert isinstance(training.timetable, AssetOrTimeSchedule)
    assert training.timetable.timetable == CronTriggerTimetable("0 3 * * 1", timezone="UTC")
    assert training.timetable.asset_condition == retrain
    monitoring = bag.dags["churn_monitoring"]
    assert monitoring.timetable == CronTriggerTimetable(churn_ir.monitoring.schedule, timezone="UTC")
    assert monitoring.get_task("trigger_retrain").outlets == [retrain]
    assert training.get_task("check_gates_passed").ignore_downstream_trigger_rules is True


def test_kubernetes_pods_carry_the_ir_placement(churn_ir, tmp_path):
    bag = dagbag(write(emit(churn_ir, "kubernetes")[0], tmp_path))
    context = {"params": {"run_dir": "s3://bucket/run-1"}, "run_id": "manual__1"}
    for pipeline in churn_ir.pipelines:
        dag = bag.dags[f"churn_{pipeline.id}"]
        for step in pipeline.steps:
            task = dag.get_task(step.task_id)
            kwargs = task.partial_kwargs if step.fan_out else task.__dict__
            resources = kwargs["container_resources"]
            where = step.placement
            requests = {"cpu": where.cpu, "memory": where.memory}
            assert resources.requests == requests
            gpu = {where.gpu.resource: str(where.gpu.count)} if where.gpu else {}
            assert resources.limits == {**requests, **gpu}
            assert kwargs["service_account_name"] == churn_ir.service_account(step.service_account).name
            tolerations = [(t.key, t.operator, t.value, t.effect) for t in kwargs.get("tolerations") or []]
            assert tolerations == [(t.key, "Equal", t.value, t.effect) for t in where.tolerations]
            selector = kwargs.get("node_selector")  # a literal() when the step is pinned to a pool
            assert (getattr(selector, "value", selector) or {}) == where.node_selector
            assert kwargs["labels"].value == {
                **churn_ir.system.labels,
                contracts.SYSTEM_LABEL: churn_ir.system.name,
                contracts.STEP_LABEL: step.id,
            }
            assert kwargs["image"].value == step.image
            assert kwargs["cmds"].value == step.command
            if not step.fan_out:
                task.render_template_fields(context, dag.get_template_env())
                assert task.cmds == step.command
                assert task.arguments[:4] == ["--ir", task.arguments[1], "--run-dir", "s3://bucket/run-1"]
                assert json.loads(task.arguments[1]) == json.loads(churn_ir.to_json())
                if step.id in {c.step for c in pipeline.conditions}:
                    assert task.arguments[4:] == ["--result-file", "/airflow/xcom/return.json"]
                    assert task.do_xcom_push is True
            if step.id == "trigger-retrain":
                # the asset outlet is the one retraining event; the runtime only records the cooldown
                assert [a.uri for a in task.outlets] == [contracts.retrain_event_uri("churn")]
                env = task.env_vars
                env = env if isinstance(env, dict) else {e.name: e.value for e in env}
                assert env["MLSPEC_RETRAIN_SINK"] == "orchestrator"


def test_the_operator_builds_schema_valid_pods_on_the_gpu_pool(churn_ir, tmp_path):
    """KubernetesPodOperator's own pod builder (no cluster is contacted), validated against the cluster's schema."""
    import kubernetes_validate
    from kubernetes.client import ApiClient

    # The operator's hook loads a client configuration to label the pod in-cluster or not; it never connects.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: none\n"
        'clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]\n'
        "users: [{name: none, user: {token: unused}}]\n"
        "contexts: [{name: none, context: {cluster: none, user: none}}]\n"
    )
    bag = dagbag(write(emit(churn_ir, "kubernetes")[0], tmp_path / "dags"))
    context = {"params": {"run_dir": "s3://bucket/run-1"}, "run_id": "manual__1"}
    for pipeline in churn_ir.pipelines:
        dag = bag.dags[f"churn_{pipeline.id}"]
        for step in pipeline.steps:
            if step.fan_out:
                continue  # a mapped task's pods are built per map index at run time; train has the same placement
            task = dag.get_task(step.task_id)
            task.render_template_fields(context, dag.get_template_env())
            task.config_file = str(kubeconfig)
            pod = ApiClient().sanitize_for_serialization(task.build_pod_request_obj())
            kubernetes_validate.validate(pod, churn_ir.infrastructure.cluster_version, strict=True)
            if step.id == "train":
                spec = pod["spec"]
                assert spec["containers"][0]["resources"] == {
                    "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
                    "requests": {"cpu": "8", "memory": "32Gi"},
                }
                assert spec["nodeSelector"] == {"mlspec.io/node-pool": "gpu"}
                assert spec["tolerations"] == [
                    {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
                ]
                assert spec["serviceAccountName"] == "churn-training"
                assert pod["metadata"]["labels"]["mlspec.io/step"] == "train"


@pytest.mark.parametrize("mode", ["kubernetes", "local"])
def test_hostile_spec_strings_stay_data(evil_ir, tmp_path, mode):
    assert evil_ir.system.description == EVIL
    bag = dagbag(write(emit(evil_ir, mode)[0], tmp_path))
    dag = bag.dags["evil_training"]
    assert dag.doc_md == EVIL
    assert dag.get_task("validate_data").owner == EVIL
    step = next(s for s in evil_ir.pipelines[0].steps if s.id == "evil-step")
    task = dag.get_task("evil_step")
    if mode == "local":
        steps = task.python_callable.__globals__["STEPS"]
        assert steps["evil-step"]["command"] == step.command
        assert steps["evil-step"]["env"] == {"EVIL": EVIL}
        return
    context = {"params": {"run_dir": "/runs/r1"}, "run_id": "manual__1"}
    task.render_template_fields(context, dag.get_template_env())
    assert task.image == evil_ir.images["runtime"] and task.image.endswith(":" + EVIL)
    # the pod runs the runtime's step contract; the user's hostile argv travels as data inside the IR
    assert task.cmds == step.command and step.user is not None and EVIL in step.user.argv
    assert "/runs/r1" in " ".join(task.arguments) and "49" not in " ".join(task.arguments)
    assert task.env_vars == {"EVIL": EVIL}
    assert task.labels["evil"] == EVIL


def test_cli_compile_output_parses_and_is_ruff_clean(tmp_path):
    """What `mlspec compile` writes (headers included) is what Airflow and ruff accept."""
    import subprocess

    from airflow_support import ROOT, VENV_BIN

    subprocess.run(
        [
            str(VENV_BIN / "mlspec"),
            "compile",
            "specs/churn.yaml",
            "--target",
            "airflow",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    folder = tmp_path / "churn" / "airflow"
    assert sorted(p.name for p in folder.iterdir()) == ["churn_monitoring.py", "churn_training.py", "ir.json"]
    assert sorted(dagbag(folder).dags) == ["churn_monitoring", "churn_training"]
    fmt = subprocess.run(
        [str(VENV_BIN / "ruff"), "format", "--check", "--isolated", "--line-length", "110", str(folder)],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
