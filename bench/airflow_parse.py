"""DagBag parse time: mlspec's generated Airflow DAG vs the same DAG hand-written vs dag-factory's YAML.

For 20 and 200 tasks (the churn training pipeline plus a chain of user steps), kubernetes mode: every
variant builds the same KubernetesPodOperators (image, argv, resources, GPU node selector and toleration,
service account, retries with backoff, timeout), the same short-circuit gates and the same mapped tuning
trials. Imports are warmed first, then the folders are parsed in turns by Airflow's file-parsing DagBag,
REPEATS times each; the table shows the medians. Logging at ERROR keeps log lines out of the timings.

    .venv/bin/python bench/airflow_parse.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")  # no per-parse log lines in the timings
os.environ.setdefault("DO_NOT_TRACK", "1")  # dag-factory telemetry off (and there is no network here)
os.environ.setdefault("SCARF_NO_ANALYTICS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backends" / "airflow" / "tests"))

from mlspec_airflow import AirflowBackend  # noqa: E402

import mlspec  # noqa: E402
from mlspec.backends import EmitContext  # noqa: E402

REPEATS = {20: 40, 200: 10}
BUILTIN_TASKS = 10  # 8 training steps + 2 gate checks


def spec_data(tasks: int) -> dict:
    from airflow_support import churn_data

    data = churn_data()
    users = tasks - BUILTIN_TASKS
    data["steps"] = [
        {
            "name": f"step-{i:03d}",
            "command": ["python", "jobs/step.py", "--index", str(i), "{outputs.out}"],
            "after": "validate-data" if i == 0 else f"step-{i - 1:03d}",
            "before": "tune-trial",
            "cache": False,
        }
        for i in range(users)
    ]
    return data


def generated(ir, folder: Path) -> None:
    files = {
        a.path: a.data()
        for a in AirflowBackend().emit(ir, EmitContext(options={"airflow_mode": "kubernetes"}))
    }
    folder.mkdir(parents=True)
    (folder / "ir.json").write_bytes(files["ir.json"])
    (folder / "churn_training.py").write_bytes(files["churn_training.py"])


def _k8s_kwargs(ir, step) -> dict:
    where = step.placement
    requests = {"cpu": where.cpu, "memory": where.memory}
    limits = {**requests, **({where.gpu.resource: str(where.gpu.count)} if where.gpu else {})}
    return {
        "requests": requests,
        "limits": limits,
        "node_selector": dict(where.node_selector),
        "tolerations": [(t.key, t.value, t.effect) for t in where.tolerations],
        "service_account": ir.service_account(step.service_account).name,
    }


def hand_written(ir, folder: Path) -> None:
    """The DAG as a person writes it: one static operator call per task, values inline."""
    pipeline = ir.pipeline("training")
    run_dir = "{{ params.run_dir or var.value.get('mlspec_churn_runs_root', 's3://acme-ml-artifacts/churn/airflow-runs') }}"
    lines = [
        "import datetime",
        "",
        "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
        "from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, task",
        "from kubernetes.client import models as k8s",
        "",
        'RETRAIN = Asset(name="churn_retrain", uri="mlspec://churn/retrain")',
        "IR = \"{{ var.value.get('mlspec_churn_ir', 'ir.json') }}\"",
        f"RUN_DIR = {run_dir!r}",
        "",
        "",
        "@task.short_circuit",
        "def condition_holds(result, output):",
        "    return bool(result) and result.get(output) is True",
        "",
        "",
        "with DAG(",
        '    dag_id="churn_training",',
        '    description="Train, gate and register churn",',
        '    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"), assets=RETRAIN),',
        "    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),",
        "    catchup=False,",
        "    max_active_runs=1,",
        '    tags=["mlspec", "churn", "training"],',
        '    default_args={"owner": "growth-ml"},',
        '    params={"run_dir": Param("", type="string")},',
        "):",
    ]
    for step in pipeline.steps:
        kw = _k8s_kwargs(ir, step)
        call = "KubernetesPodOperator.partial(" if step.fan_out else "KubernetesPodOperator("
        lines += [
            f"    {step.task_id} = {call}",
            f"        task_id={step.task_id!r},",
            f"        name={step.id!r},",
            '        namespace="churn",',
            f"        image={step.image!r},",
            f"        cmds={step.command!r},",
        ]
        if step.kind == "builtin" and not step.fan_out:
            extra = ', "--result-file", "/airflow/xcom/return.json"' if step.id == "evaluate" else ""
            lines.append(f'        arguments=["--ir", IR, "--run-dir", RUN_DIR{extra}],')
        if step.id == "evaluate":
            lines.append("        do_xcom_push=True,")
        lines += [
            f"        labels={{'cost-center': '4711', 'mlspec.io/system': 'churn', 'mlspec.io/step': {step.id!r}}},",
            f"        container_resources=k8s.V1ResourceRequirements(requests={kw['requests']!r}, limits={kw['limits']!r}),",
        ]
        if kw["node_selector"]:
            lines.append(f"        node_selector={kw['node_selector']!r},")
            tolerations = ", ".join(
                f"k8s.V1Toleration(key={k!r}, operator='Equal', value={v!r}, effect={e!r})"
                for k, v, e in kw["tolerations"]
            )
            lines.append(f"        tolerations=[{tolerations}],")
        lines += [
            f"        service_account_name={kw['service_account']!r},",
            f"        retries={step.retries},",
            f"        retry_delay=datetime.timedelta(seconds={step.retry_backoff_seconds}),",
            "        retry_exponential_backoff=2.0,",
            f"        execution_timeout=datetime.timedelta(seconds={step.timeout_seconds}),",
            "        get_logs=True,",
            '        on_finish_action="delete_pod",',
        ]
        if step.fan_out:
            lines += [
                f"        max_active_tis_per_dagrun={step.fan_out.parallelism},",
                f'    ).expand(arguments=[["--ir", IR, "--run-dir", RUN_DIR, "--trial", str(i)] for i in range({step.fan_out.count})])',
            ]
        else:
            lines.append("    )")
    for cond in pipeline.conditions:
        lines.append(
            f'    check_{cond.id.replace("-", "_")} = condition_holds.override(task_id="check_{cond.id.replace("-", "_")}")'
            f"(evaluate.output, {cond.output!r})"
        )
    by_id = {s.id: s for s in pipeline.steps}
    for step in pipeline.steps:
        ups = [by_id[d].task_id for d in step.depends_on] + [
            f"check_{c.replace('-', '_')}" for c in step.conditions
        ]
        if ups:
            lines.append(f"    [{', '.join(ups)}] >> {step.task_id}")
    folder.mkdir(parents=True)
    (folder / "churn_training.py").write_text("\n".join(lines) + "\n")


def dag_factory(ir, folder: Path, support: Path) -> None:
    """dag-factory's equivalent: a YAML config plus the loader file dag-factory documents."""
    import yaml

    pipeline = ir.pipeline("training")
    run_dir = "{{ params.run_dir or var.value.get('mlspec_churn_runs_root', 's3://acme-ml-artifacts/churn/airflow-runs') }}"
    ir_arg = "{{ var.value.get('mlspec_churn_ir', 'ir.json') }}"
    by_id = {s.id: s for s in pipeline.steps}
    tasks = {}
    for step in pipeline.steps:
        kw = _k8s_kwargs(ir, step)
        task = {
            "operator": "airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator",
            "name": step.id,
            "namespace": "churn",
            "image": step.image,
            "cmds": list(step.command),
            "labels": {"cost-center": "4711", "mlspec.io/system": "churn", "mlspec.io/step": step.id},
            "container_resources": {
                "__type__": "kubernetes.client.models.V1ResourceRequirements",
                "requests": kw["requests"],
                "limits": kw["limits"],
            },
            "service_account_name": kw["service_account"],
            "retries": step.retries,
            "retry_delay": {"__type__": "datetime.timedelta", "seconds": step.retry_backoff_seconds},
            "retry_exponential_backoff": 2.0,
            "execution_timeout": {"__type__": "datetime.timedelta", "seconds": step.timeout_seconds},
            "get_logs": True,
            "on_finish_action": "delete_pod",
            "dependencies": [by_id[d].task_id for d in step.depends_on]
            + [f"check_{c.replace('-', '_')}" for c in step.conditions],
        }
        if kw["node_selector"]:
            task["node_selector"] = kw["node_selector"]
            task["tolerations"] = [
                {
                    "__type__": "kubernetes.client.models.V1Toleration",
                    "key": k,
                    "operator": "Equal",
                    "value": v,
                    "effect": e,
                }
                for k, v, e in kw["tolerations"]
            ]
        if step.kind == "builtin":
            args = ["--ir", ir_arg, "--run-dir", run_dir]
            if step.fan_out:
                task["max_active_tis_per_dagrun"] = step.fan_out.parallelism
                task["expand"] = {
                    "arguments": [[*args, "--trial", str(i)] for i in range(step.fan_out.count)]
                }
            else:
                task["arguments"] = args + (
                    ["--result-file", "/airflow/xcom/return.json"] if step.id == "evaluate" else []
                )
        if step.id == "evaluate":
            task["do_xcom_push"] = True
        tasks[step.task_id] = task
    for cond in pipeline.conditions:
        tasks[f"check_{cond.id.replace('-', '_')}"] = {
            "operator": "airflow.providers.standard.operators.python.ShortCircuitOperator",
            "python_callable_name": "condition_holds",
            "python_callable_file": str(support / "callables.py"),
            "op_kwargs": {"output": cond.output},
            "dependencies": ["evaluate"],
        }
    config = {
        "churn_training": {
            "description": "Train, gate and register churn",
            "schedule": "0 3 * * 1",
            "start_date": "2024-01-01",
            "catchup": False,
            "max_active_runs": 1,
            "tags": ["mlspec", "churn", "training"],
            "default_args": {"owner": "growth-ml"},
            "tasks": tasks,
        }
    }
    folder.mkdir(parents=True)
    (folder / "churn_training.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "churn_training.py").write_text(
        "# airflow dag: dag-factory loader\nfrom pathlib import Path\n\nfrom dagfactory import load_yaml_dags\n\n"
        "load_yaml_dags(globals_dict=globals(), config_filepath=str(Path(__file__).with_name('churn_training.yml')))\n"
    )


def parse_all(folders: dict[str, Path], repeats: int, expected_tasks: int) -> dict[str, float]:
    """Median DagBag time per folder; the folders take turns so load drift on a shared machine hits all alike."""
    from airflow.dag_processing.dagbag import DagBag

    times: dict[str, list[float]] = {name: [] for name in folders}
    for round_ in range(repeats + 1):  # round 0 warms imports and caches, and is discarded
        for name, folder in folders.items():
            start = time.perf_counter()
            bag = DagBag(dag_folder=str(folder))
            elapsed = time.perf_counter() - start
            assert not bag.import_errors, bag.import_errors
            assert len(bag.dags["churn_training"].tasks) == expected_tasks, (
                folder,
                len(bag.dags["churn_training"].tasks),
            )
            del bag
            if round_:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    import dagfactory  # noqa: F401  (warm the import like the others)
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator  # noqa: F401

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        support = Path(tmp, "support")
        support.mkdir()
        (support / "callables.py").write_text(
            "def condition_holds(output, ti=None):\n"
            "    result = ti.xcom_pull(task_ids='evaluate')\n"
            "    return bool(result) and result.get(output) is True\n"
        )
        for tasks in (20, 200):
            ir = mlspec.lower(mlspec.loads(json.dumps(spec_data(tasks)), "bench.yaml"))
            folders = {name: Path(tmp, f"{name}-{tasks}") for name in ("mlspec", "hand", "dag-factory")}
            generated(ir, folders["mlspec"])
            hand_written(ir, folders["hand"])
            dag_factory(ir, folders["dag-factory"], support)
            seconds = parse_all(folders, REPEATS[tasks], tasks)
            rows.append((tasks, seconds))
    print(
        f"DagBag parse time, median (Airflow {__import__('airflow').__version__}, dag-factory "
        f"{__import__('importlib.metadata').metadata.version('dag-factory')}, in .venv)"
    )
    print(
        f"{'tasks':>5} | {'mlspec (s)':>10} | {'hand (s)':>8} | {'dag-factory (s)':>15} | "
        f"{'mlspec/hand':>11} | {'dag-factory/mlspec':>18}"
    )
    print("-" * 84)
    for tasks, s in rows:
        print(
            f"{tasks:>5} | {s['mlspec']:>10.4f} | {s['hand']:>8.4f} | {s['dag-factory']:>15.4f} | "
            f"{s['mlspec'] / s['hand']:>10.2f}x | {s['dag-factory'] / s['mlspec']:>17.1f}x"
        )


if __name__ == "__main__":
    main()
