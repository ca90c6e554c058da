"""Structural proof of the compiled KFP YAML: kfp loads it, and resources, scheduling, retries, timeouts,
caching, gates, fan-out, parameters and schedules equal what the IR says."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import yaml

import mlspec
from mlspec.backends import EmitContext

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "specs" / "churn.yaml"
# churn with Kubeflow owning its loop (churn.yaml gives it to Airflow): the monitor and both schedules
KUBEFLOW_LOOP = CHURN.read_text("utf-8").replace("  cooldown: 24h\n", "  cooldown: 24h\n  sink: kubeflow\n")


def load_churn():
    return mlspec.loads(KUBEFLOW_LOOP, "specs/churn.yaml")


def compile_churn() -> dict[str, bytes]:
    result = mlspec.compile(load_churn(), ["kubeflow"])
    return {a.path: a.data() for a in result.artifacts["kubeflow"]}


@pytest.fixture(scope="module")
def churn_files() -> dict[str, bytes]:
    return compile_churn()


@pytest.fixture(scope="module")
def ir():
    return mlspec.lower(load_churn())


def documents(data: bytes) -> tuple[dict, dict]:
    spec, platform = yaml.safe_load_all(data)
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def all_tasks(spec: dict) -> dict[str, dict]:
    """Every task of the pipeline, however deeply nested in condition / for-loop sub-DAGs."""
    found = dict(spec["root"]["dag"]["tasks"])
    for comp in spec["components"].values():
        found.update(comp.get("dag", {}).get("tasks", {}))
    return found


def test_outputs_are_the_pipelines_schedules_and_readme(churn_files):
    assert sorted(churn_files) == [
        "README.md",
        "monitor-recurring-run.json",
        "monitor.yaml",
        "pipeline.yaml",
        "recurring-run.json",
    ]


def test_only_the_loop_owner_schedules_and_monitors():
    result = mlspec.compile(mlspec.load(CHURN), ["kubeflow"])  # churn.yaml: Airflow owns the loop
    assert result.ir.retraining.owner == "airflow"
    files = {a.path: a.data().decode() for a in result.artifacts["kubeflow"]}
    assert sorted(files) == ["README.md", "pipeline.yaml"]
    assert "The retraining loop belongs to **airflow**" in files["README.md"]


def test_the_readme_names_the_pipeline_the_sink_starts(churn_files, ir):
    readme = churn_files["README.md"].decode()
    assert f'pipeline_name="{ir.system.name}-training"' in readme and "## The retraining loop" in readme
    assert ir.retraining.state_uri in readme


def test_kfp_loads_both_pipelines(churn_files, tmp_path):
    from kfp import components

    for name in ("pipeline.yaml", "monitor.yaml"):
        (tmp_path / name).write_bytes(churn_files[name])
        loaded = components.load_component_from_file(str(tmp_path / name))
        assert loaded.name in ("churn-training", "churn-monitoring")


def test_every_task_carries_its_ir_placement(churn_files, ir):
    spec, executors = documents(churn_files["pipeline.yaml"])
    for step in ir.pipeline("training").steps:
        container = spec["deploymentSpec"]["executors"][f"exec-{step.id}"]["container"]
        platform = executors[f"exec-{step.id}"]
        where = step.placement
        resources = container["resources"]
        assert resources["resourceCpuRequest"] == resources["resourceCpuLimit"] == where.cpu
        assert resources["resourceMemoryRequest"] == resources["resourceMemoryLimit"] == where.memory
        if where.gpu:
            accelerator = resources["accelerator"]
            assert accelerator["resourceType"] == where.gpu.resource
            assert accelerator["resourceCount"] == str(where.gpu.count)
        else:
            assert "accelerator" not in resources
        assert platform.get("nodeSelector", {}).get("labels", {}) == where.node_selector
        assert platform.get("tolerations", []) == [
            {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
            for t in where.tolerations
        ]
        assert container["image"] == step.image


def test_churn_trains_on_its_gpu_pool_with_the_extended_resource(churn_files, ir):
    # The accelerator type becomes a key of the pod's resources.limits (see test_kfp_driver_pod.py): it is the
    # device plugin's resource, never the GPU product (nvidia-a10g), which selects the pool instead.
    pool = ir.node_pool("gpu")
    assert pool.gpu.product == "nvidia-a10g"
    spec, executors = documents(churn_files["pipeline.yaml"])
    for step_id in ("tune-trial", "train"):
        accelerator = spec["deploymentSpec"]["executors"][f"exec-{step_id}"]["container"]["resources"]
        assert accelerator["accelerator"]["resourceType"] == "nvidia.com/gpu"
        assert accelerator["accelerator"]["resourceCount"] == "1"
        assert executors[f"exec-{step_id}"]["nodeSelector"] == {"labels": {"mlspec.io/node-pool": "gpu"}}
        assert executors[f"exec-{step_id}"]["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        ]
        assert executors[f"exec-{step_id}"]["nodeSelector"]["labels"] == pool.node_selector
    assert "nvidia-a10g" not in json.dumps([spec["deploymentSpec"], executors])  # only in the IR parameter


@pytest.mark.parametrize(
    ("file", "pipeline_id"), [("pipeline.yaml", "training"), ("monitor.yaml", "monitoring")]
)
def test_pods_carry_the_system_labels(churn_files, ir, file, pipeline_id):
    from mlspec import contracts

    _, executors = documents(churn_files[file])
    for step in ir.pipeline(pipeline_id).steps:
        assert executors[f"exec-{step.id}"]["podMetadata"]["labels"] == {
            **ir.system.labels,
            contracts.SYSTEM_LABEL: ir.system.name,
            contracts.STEP_LABEL: step.id,
        }


@pytest.mark.parametrize(
    ("file", "pipeline_id"), [("pipeline.yaml", "training"), ("monitor.yaml", "monitoring")]
)
def test_retries_timeouts_caching_and_names_match_the_ir(churn_files, ir, file, pipeline_id):
    spec, executors = documents(churn_files[file])
    tasks = all_tasks(spec)
    for step in ir.pipeline(pipeline_id).steps:
        task = tasks[step.id]
        assert task["taskInfo"]["name"] == step.display_name
        assert task["retryPolicy"] == {
            "maxRetryCount": step.retries,
            "backoffDuration": f"{step.retry_backoff_seconds}s",
            "backoffFactor": 2.0,
            "backoffMaxDuration": "3600s",
        }
        assert int(executors[f"exec-{step.id}"]["activeDeadlineSeconds"]) == step.timeout_seconds
        assert task["cachingOptions"].get("enableCache", False) is step.cache


def test_gates_guard_export_register_promote(churn_files, ir):
    spec, _ = documents(churn_files["pipeline.yaml"])
    evaluate = spec["components"]["comp-evaluate"]
    assert set(evaluate["outputDefinitions"]["parameters"]) == {"gates_passed", "beats_champion"}
    tasks = all_tasks(spec)
    # Each task's enclosing conditions: walk from the task up through the condition sub-DAGs.
    parent_of = {}
    for comp_name, comp in spec["components"].items():
        for name in comp.get("dag", {}).get("tasks", {}):
            parent_of[name] = comp_name.removeprefix("comp-")
    conditions = {
        name: task["triggerPolicy"]["condition"] for name, task in tasks.items() if "triggerPolicy" in task
    }

    def guards(task_name: str) -> set[str]:
        out, node = set(), task_name
        while node in parent_of:
            node = parent_of[node]
            if node in conditions:
                out.add(conditions[node])
        return out

    for step in ir.pipeline("training").steps:
        expected = {
            f"inputs.parameter_values['pipelinechannel--check-{c}-Output'] == true" for c in step.conditions
        }
        assert guards(step.id) == expected, step.id
    assert guards("register") and guards("promote") > guards("register")


def test_tuning_fans_out_with_the_ir_parallelism(churn_files, ir):
    spec, _ = documents(churn_files["pipeline.yaml"])
    fan = next(s for s in ir.pipeline("training").steps if s.fan_out).fan_out
    loops = [t for t in all_tasks(spec).values() if "parameterIterator" in t]
    loop_keys = [k for k, t in all_tasks(spec).items() if "parameterIterator" in t]
    assert len(loops) == 1
    assert json.loads(loops[0]["parameterIterator"]["items"]["raw"]) == list(range(fan.count))
    assert loops[0]["iteratorPolicy"]["parallelismLimit"] == fan.parallelism
    assert "tune-trial" in loops[0]["taskInfo"]["name"]
    assert set(all_tasks(spec)["tune-select"]["dependentTasks"]) == set(loop_keys)


def test_pipeline_parameters_cover_ir_data_and_hyperparameters(churn_files, ir):
    spec, _ = documents(churn_files["pipeline.yaml"])
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert json.loads(params["ir_json"]["defaultValue"]) == ir.model_dump(mode="json")
    assert params["run_root"]["defaultValue"] == ir.artifacts_root + "/runs"
    for src in ir.data.sources:
        assert params[f"data_{src.name}"]["defaultValue"] == src.uri
    for key, value in ir.training.hyperparameters.items():
        assert json.loads(params[f"hparam_{key}"]["defaultValue"]) == value


def test_recurring_runs_are_create_recurring_run_arguments(churn_files, ir):
    from kfp import Client

    signature = inspect.signature(Client.create_recurring_run)
    for file, pipeline_id, package in [
        ("recurring-run.json", "training", "pipeline.yaml"),
        ("monitor-recurring-run.json", "monitoring", "monitor.yaml"),
    ]:
        body = json.loads(churn_files[file])
        signature.bind(None, experiment_id="e", **body)  # raises on any argument kfp does not take
        assert body["cron_expression"] == "0 " + ir.pipeline(pipeline_id).schedule
        assert body["pipeline_package_path"] == package
    assert json.loads(churn_files["recurring-run.json"])["service_account"] == "churn-training"


def test_two_compiles_are_byte_identical(churn_files):
    assert compile_churn() == churn_files


def churn_variant(edit):
    """The churn spec, edited as data, targeting kubeflow only (block YAML: diagnostics get distinct lines)."""
    import io

    from ruamel.yaml import YAML

    data = json.loads(json.dumps(YAML(typ="safe").load(CHURN.read_text(encoding="utf-8"))))
    data["targets"] = ["kubeflow"]
    edit(data)
    text = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, text)
    return mlspec.loads(text.getvalue(), "specs/churn.yaml")


def test_lint_predicts_exactly_what_compile_reports():
    """Kubeflow expresses training that spans nodes (its train task launches the job): no MS301. Lint asks for
    the kubernetes target, which declares that job (MS228), compile refuses the same, and both are clean with
    it."""

    def distributed(data):
        data["training"]["distributed"] = {"workers": 4}
        data["steps"] = [{"name": "report", "command": ["python", "report.py"], "after": "evaluate"}]

    loaded = churn_variant(distributed)
    linted = mlspec.lint(loaded)
    assert [d.code for d in linted] == ["MS228"]
    assert linted[0].key_path == ("training", "distributed", "workers") and linted[0].location.line > 1
    ir = mlspec.lower(loaded)
    from mlspec_kubeflow import KubeflowBackend

    assert list(KubeflowBackend().check(ir, {})) == []  # nothing unsupported
    with pytest.raises(mlspec.MlspecError, match="MS228"):
        mlspec.compile(loaded, ["kubeflow"])

    def with_kubernetes(data):
        distributed(data)
        data["targets"] = ["kubeflow", "kubernetes"]

    both = churn_variant(with_kubernetes)
    assert mlspec.lint(both) == [] and mlspec.compile(both, ["kubeflow", "kubernetes"]).diagnostics == []


def test_data_triggers_without_monitoring_never_reach_the_backend(ir):
    from mlspec_kubeflow import KubeflowBackend

    def no_monitoring(data):
        del data["monitoring"]

    assert "MS205" in {d.code for d in mlspec.lint(churn_variant(no_monitoring))}
    no_monitor = ir.model_copy(update={"pipelines": [ir.pipeline("training")], "monitoring": None})
    assert list(KubeflowBackend().check(no_monitor, {})) == []  # not a capability: lint's MS205 owns it
    with pytest.raises(AssertionError, match="no monitoring pipeline"):
        KubeflowBackend().emit(no_monitor, EmitContext())


def test_user_steps_run_the_runtime_step_contract():
    """A user step is a lightweight component like the builtin steps: the runtime stages its inputs, expands
    its placeholders and checks its outputs (so kfp.local runs it too); its own argv is in the IR."""
    from mlspec_kubeflow.pipeline import compile_pipeline

    def featurize(data):
        data["steps"] = [
            {
                "name": "featurize",
                "image": "ghcr.io/acme/featurize:1",
                "command": ["featurize", "--out", "{outputs.table}"],
                "after": "validate-data",
                "before": "train",
            }
        ]

    ir = mlspec.lower(churn_variant(featurize))
    spec, _ = yaml.safe_load_all(compile_pipeline(ir, ir.pipeline("training")))
    task = spec["root"]["dag"]["tasks"]["featurize"]
    assert task["inputs"]["parameters"]["command"]["runtimeValue"]["constant"] == [
        "python",
        "-m",
        "mlspec.runtime",
        "featurize",
    ]
    assert (
        spec["deploymentSpec"]["executors"]["exec-featurize"]["container"]["image"]
        == "ghcr.io/acme/featurize:1"
    )
    step = next(s for s in ir.pipeline("training").steps if s.id == "featurize")
    assert step.user.argv == ["featurize", "--out", "{outputs.table}"] and step.user.files == ["table"]
