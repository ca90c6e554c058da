"""Compile time of the Kubeflow backend next to kfp's own compile of the same pipeline written by hand.

The floor is a hand-written kfp DSL pipeline with the same tasks and task settings (resources, retries,
timeout, caching, display names, dependencies), compiled by kfp.compiler.Compiler: the cost any KFP user pays.
Rows: the example spec (training + monitoring pipeline, recurring runs, README) and synthetic training
pipelines with 10/100/1,000 chained user steps.

    .venv/bin/python bench/kubeflow_compile.py [--repeat N]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kfp import compiler, dsl, kubernetes
from mlspec_kubeflow import KubeflowBackend
from mlspec_kubeflow import components as comps
from mlspec_kubeflow.pipeline import pipeline_params

import mlspec
from mlspec.backends import EmitContext
from mlspec.ir.model import IR, Step

ROOT = Path(__file__).resolve().parents[1]


def synthetic(ir: IR, n: int) -> IR:
    """The churn IR whose training pipeline is n chained user steps."""
    base = ir.pipeline("training").steps[0]
    steps = []
    for i in range(n):
        data = base.model_dump()
        data.update(
            id=f"user-{i}",
            task_id=f"user_{i}",
            display_name=f"User step {i}",
            kind="user",
            action="user",
            image="ghcr.io/acme/user:1",
            command=["featurize", f"--part={i}", "--out", "{outputs.table}"],
            depends_on=[f"user-{i - 1}"] if i else [],
            conditions=[],
        )
        steps.append(Step.model_validate(data))
    training = ir.pipeline("training").model_copy(update={"steps": steps, "conditions": []})
    return ir.model_copy(update={"pipelines": [training], "retraining": None, "monitoring": None})


def compile_to_text(func) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        compiler.Compiler().compile(func, str(path))
        return path.read_text()


# ---- the floor: the same pipelines written by hand in the kfp DSL -------------------------------------------


def hand_user_pipeline(n: int, defaults: dict):
    def make(i: int):
        def user_step(run_root: str, run_id: str):
            return dsl.ContainerSpec(
                image="ghcr.io/acme/user:1",
                command=[
                    "featurize",
                    f"--part={i}",
                    "--out",
                    f"{run_root}/{run_id}/steps/user-{i}/outputs/table",
                ],
            )

        user_step.__name__ = f"user_{i}"
        return dsl.container_component(user_step)

    components = [make(i) for i in range(n)]

    @dsl.pipeline(
        name="churn-training", description="Train, gate and register churn", display_name="churn training"
    )
    def training(
        ir_json: str = defaults["ir_json"],
        run_root: str = defaults["run_root"],
        data_reference: str = defaults["data_reference"],
        data_train: str = defaults["data_train"],
    ):
        prev = None
        for i, comp in enumerate(components):
            task = comp(run_root=run_root, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
            task.set_display_name(f"User step {i}").set_cpu_request("1").set_cpu_limit("1")
            task.set_memory_request("4Gi").set_memory_limit("4Gi")
            task.set_retry(num_retries=1, backoff_duration="30s", backoff_factor=2.0)
            kubernetes.set_timeout(task, 3600)
            task.set_caching_options(False)
            for key, value in (
                ("cost-center", "4711"),
                ("mlspec.io/step", f"user-{i}"),
                ("mlspec.io/system", "churn"),
            ):
                kubernetes.add_pod_label(task, key, value)
            if prev is not None:
                task.after(prev)
            prev = task

    return training


def hand_churn_pipelines(ir: IR):
    image = ir.images["runtime"]
    defaults = {k: d for k, (_, d) in pipeline_params(ir, ir.pipeline("training")).defaults.items()}
    step = comps.step_component
    cond = comps.condition_component

    names = {s.id: s.display_name for p in ir.pipelines for s in p.steps}

    def gpu(task, cpu, mem, retries, timeout):
        task.set_display_name(names[task.name])
        task.set_cpu_request(cpu).set_cpu_limit(cpu).set_memory_request(mem).set_memory_limit(mem)
        task.set_retry(num_retries=retries, backoff_duration="30s", backoff_factor=2.0)
        kubernetes.set_timeout(task, timeout)
        task.set_caching_options(False)
        for key, value in (
            ("cost-center", "4711"),
            ("mlspec.io/step", task.name),
            ("mlspec.io/system", "churn"),
        ):
            kubernetes.add_pod_label(task, key, value)
        return task

    def call(name, ir_json, run_root, data, hp=None, trial=-1, outputs=()):
        return step(outputs, image, name)(
            command=["python", "-m", "mlspec.runtime", name],
            step=name,
            ir=ir_json,
            run_root=run_root,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            trial=trial,
            data=data,
            hparams=hp or {},
        )

    @dsl.pipeline(
        name="churn-training", description="Train, gate and register churn", display_name="churn training"
    )
    def training(
        ir_json: str = defaults["ir_json"],
        run_root: str = defaults["run_root"],
        data_reference: str = defaults["data_reference"],
        data_train: str = defaults["data_train"],
        hparam_batch_size: str = "256",
        hparam_epochs: str = "15",
        hparam_lr: str = "0.005",
    ):
        data = {"reference": data_reference, "train": data_train}
        hp = {"batch_size": hparam_batch_size, "epochs": hparam_epochs, "lr": hparam_lr}
        validate = gpu(call("validate-data", ir_json, run_root, data), "1", "4Gi", 1, 3600)
        with dsl.ParallelFor(items=[0, 1, 2, 3], parallelism=2, name="tune-trial") as i:
            trial = gpu(call("tune-trial", ir_json, run_root, data, hp, trial=i), "8", "32Gi", 2, 7200).after(
                validate
            )
            trial.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
            kubernetes.add_node_selector(trial, "mlspec.io/node-pool", "gpu")
            kubernetes.add_toleration(
                trial, key="nvidia.com/gpu", operator="Equal", value="true", effect="NoSchedule"
            )
        select = gpu(call("tune-select", ir_json, run_root, data), "1", "2Gi", 1, 3600).after(trial)
        train = gpu(call("train", ir_json, run_root, data, hp), "8", "32Gi", 2, 7200).after(select)
        train.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
        kubernetes.add_node_selector(train, "mlspec.io/node-pool", "gpu")
        kubernetes.add_toleration(
            train, key="nvidia.com/gpu", operator="Equal", value="true", effect="NoSchedule"
        )
        evaluate = gpu(
            call("evaluate", ir_json, run_root, data, outputs=("beats_champion", "gates_passed")),
            "1",
            "2Gi",
            1,
            3600,
        ).after(train)
        gates = cond(image, "check-gates-passed")(value=evaluate.outputs["gates_passed"])
        gates.set_display_name("Check: every evaluation gate holds").set_caching_options(False)
        beats = cond(image, "check-beats-champion")(value=evaluate.outputs["beats_champion"])
        beats.set_display_name("Check: the challenger beats the current champion (or there is none)")
        beats.set_caching_options(False)
        with dsl.If(gates.output == True, name="gates-passed"):  # noqa: E712
            export = gpu(call("export", ir_json, run_root, data), "1", "2Gi", 1, 3600).after(evaluate)
            register = gpu(call("register", ir_json, run_root, data), "1", "2Gi", 1, 3600).after(export)
            with dsl.If(beats.output == True, name="beats-champion"):  # noqa: E712
                gpu(call("promote", ir_json, run_root, data), "1", "2Gi", 1, 3600).after(register)

    @dsl.pipeline(
        name="churn-monitoring",
        description="Monitor churn and decide retraining",
        display_name="churn monitoring",
    )
    def monitoring(
        ir_json: str = defaults["ir_json"],
        run_root: str = defaults["run_root"],
        data_reference: str = defaults["data_reference"],
        data_train: str = defaults["data_train"],
    ):
        data = {"reference": data_reference, "train": data_train}
        monitor = gpu(call("monitor", ir_json, run_root, data, outputs=("retrain",)), "1", "2Gi", 1, 1800)
        retrain = cond(image, "check-retrain-needed")(value=monitor.outputs["retrain"])
        retrain.set_display_name(
            "Check: a retraining trigger fired outside its cooldown"
        ).set_caching_options(False)
        with dsl.If(retrain.output == True, name="retrain-needed"):  # noqa: E712
            gpu(call("trigger-retrain", ir_json, run_root, data), "1", "2Gi", 1, 600).after(monitor)

    return training, monitoring


# ---- timing ------------------------------------------------------------------------------------------------


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ir = mlspec.lower(mlspec.load(ROOT / "specs" / "churn.yaml"))
    backend = KubeflowBackend()
    rows = []

    def ours(target: IR):
        return lambda: backend.emit(target, EmitContext(allow_unsupported=True))

    def floor_churn():
        for func in hand_churn_pipelines(ir):
            compile_to_text(func)

    mine = {a.path: a.content for a in ours(ir)()}  # also warms imports and the component cache
    training, monitoring = hand_churn_pipelines(ir)
    same = (compile_to_text(training), compile_to_text(monitoring)) == (
        mine["pipeline.yaml"],
        mine["monitor.yaml"],
    )
    rows.append(
        (
            f"churn (2 pipelines){'' if same else ' (differs)'}",
            len(ir.pipeline("training").steps),
            best_of(args.repeat, ours(ir)),
            best_of(args.repeat, floor_churn),
        )
    )
    for n in (10, 100, 1000):
        target = synthetic(ir, n)
        repeat = max(1, args.repeat if n < 1000 else args.repeat // 2)
        defaults = {
            k: d for k, (_, d) in pipeline_params(target, target.pipeline("training")).defaults.items()
        }
        same = compile_to_text(hand_user_pipeline(n, defaults)) == ours(target)()[0].content
        rows.append(
            (
                f"{n} user steps{'' if same else ' (differs)'}",
                n,
                best_of(repeat, ours(target)),
                best_of(repeat, lambda n=n, d=defaults: compile_to_text(hand_user_pipeline(n, d))),
            )
        )

    print(f"{'pipeline':<22}{'steps':>7}{'backend s':>12}{'kfp floor s':>13}{'ratio':>8}{'ms/step':>10}")
    for name, steps, mine, floor in rows:
        print(
            f"{name:<22}{steps:>7}{mine:>12.3f}{floor:>13.3f}{mine / floor:>8.2f}{1000 * mine / steps:>10.2f}"
        )


if __name__ == "__main__":
    main()
