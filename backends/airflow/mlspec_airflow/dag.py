"""The view of one IR pipeline that the DAG template renders: tasks, edges, schedule, all as plain data.

Names that become Python code (variables, task ids) are checked identifiers; everything else from the spec
stays data and reaches the template only through the `lit` literal formatter.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

from mlspec import contracts
from mlspec.ir.model import IR, Pipeline, Step

MODES = ("kubernetes", "local")
RETRAIN_TRIGGERS = ("drift", "performance", "volume", "data_quality")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DNS = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# Module-level names of the template; a task variable must not shadow them (or a builtin, or a keyword).
_TEMPLATE_NAMES = frozenset(
    {
        "DAG",
        "Asset",
        "AssetOrTimeSchedule",
        "CronTriggerTimetable",
        "Param",
        "Variable",
        "literal",
        "task",
        "KubernetesPodOperator",
        "k8s",
        "datetime",
        "json",
        "os",
        "re",
        "subprocess",
        "sys",
        "tempfile",
        "Path",
        "dag",
        "run_step",
        "run_dir",
        "condition_holds",
        "ir_argument",
        "DAG_ID",
        "STEPS",
        "RESULT_STEPS",
        "RETRAIN",
        "IR_VARIABLE",
        "RUNS_ROOT_VARIABLE",
        "WORKDIR_VARIABLE",
        "DEFAULT_IR",
        "DEFAULT_RUNS_ROOT",
        "IR_ARG",
        "RUN_DIR_ARG",
        "RUN_ID_UNSAFE",
    }
)


@dataclass
class TaskView:
    step: Step
    var: str  # the Python variable holding the task (or its XComArg)
    task_id: str
    upstream: list[str]  # variables
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)
    service_account: str = ""
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    publishes_result: bool = False
    outlets_retrain: bool = False
    launches_job: bool = False  # the train step starts the workers' job through the Kubernetes API


@dataclass
class ConditionView:
    var: str
    task_id: str
    step_var: str
    output: str
    description: str


@dataclass
class DagView:
    mode: str
    ir: IR
    pipeline: Pipeline
    dag_id: str
    file_stem: str
    tasks: list[TaskView]
    conditions: list[ConditionView]
    cron: str | None
    asset_scheduled: bool
    emits_retrain: bool
    retrain_asset_name: str
    retrain_asset_uri: str
    variable_prefix: str
    default_runs_root: str
    tags: list[str]

    @property
    def local(self) -> bool:
        return self.mode == "local"

    @property
    def result_steps(self) -> list[str]:
        return [t.step.id for t in self.tasks if t.publishes_result]

    @property
    def doc_md(self) -> str | None:
        text = self.ir.system.description
        # Airflow reads a doc_md ending in ".md" as a file path; a trailing newline keeps it text.
        return text + "\n" if text and text.endswith(".md") else text

    @property
    def steps_table(self) -> dict[str, dict]:
        table = {}
        for t in self.tasks:
            entry = {"command": list(t.step.command), "env": dict(t.step.env)}
            if t.step.fan_out:
                entry["index_arg"] = t.step.fan_out.index_arg
            table[t.step.id] = entry
        return table

    @property
    def uses_asset(self) -> bool:
        return self.asset_scheduled or self.emits_retrain


def identifier(name: str) -> str:
    ident = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_").lower() or "x"
    return f"x_{ident}" if ident[0].isdigit() else ident


def build_dag(ir: IR, pipeline: Pipeline, mode: str) -> DagView:
    system = identifier(ir.system.name)
    used: set[str] = set()

    def variable(task_id: str) -> str:
        if not _IDENT.fullmatch(task_id):
            raise ValueError(f"IR task id {task_id!r} is not an identifier")
        name = task_id
        if (
            name in _TEMPLATE_NAMES
            or keyword.iskeyword(name)
            or keyword.issoftkeyword(name)
            or hasattr(builtins, name)
        ):
            name = f"{name}_task"
        while name in used:
            name += "_"
        used.add(name)
        return name

    variables = {step.id: variable(step.task_id) for step in pipeline.steps}
    task_ids = {step.task_id for step in pipeline.steps}
    conditions: list[ConditionView] = []
    condition_vars: dict[str, str] = {}
    for cond in pipeline.conditions:
        task_id = f"check_{identifier(cond.id)}"
        while task_id in task_ids:
            task_id += "_"
        task_ids.add(task_id)
        condition_vars[cond.id] = variable(task_id)
        conditions.append(
            ConditionView(
                condition_vars[cond.id], task_id, variables[cond.step], cond.output, cond.description
            )
        )
    result_steps = {cond.step for cond in pipeline.conditions}

    retraining = ir.retraining
    # Airflow schedules training and runs the monitor only when the IR makes it the loop's owner; otherwise
    # its DAGs run when started by hand (another target's scheduler owns the cron and the trigger state).
    owner = retraining is not None and retraining.owner == "airflow"
    asset_triggers = [
        t for t in (retraining.triggers if retraining and owner else []) if t.kind in RETRAIN_TRIGGERS
    ]
    monitoring = ir.pipeline("monitoring")
    emits_retrain_step = next(
        (s.id for s in (monitoring.steps if monitoring else []) if s.action == "trigger-retrain"), None
    )
    # Lint (MS205) refuses data triggers without monitoring; lowering then adds trigger-retrain.
    assert not asset_triggers or emits_retrain_step, (
        f"IR has retraining triggers {[t.id for t in asset_triggers]} but no monitoring step emits the "
        "retrain asset event"
    )

    tasks = []
    for step in pipeline.steps:
        if not _DNS.fullmatch(step.id):
            raise ValueError(f"IR step id {step.id!r} is not a DNS-1123 label")
        upstream = [variables[d] for d in step.depends_on] + [condition_vars[c] for c in step.conditions]
        outlets_retrain = pipeline.id == "monitoring" and step.id == emits_retrain_step and owner
        if outlets_retrain:
            # The task's asset outlet is the retraining event; the runtime only records it for the cooldown.
            step = step.model_copy(update={"env": {**step.env, "MLSPEC_RETRAIN_SINK": "orchestrator"}})
        view = TaskView(
            step=step,
            var=variables[step.id],
            task_id=step.task_id,
            upstream=upstream,
            publishes_result=step.id in result_steps,
            outlets_retrain=outlets_retrain,
        )
        if mode == "kubernetes":
            _kubernetes_placement(ir, step, view)
        tasks.append(view)

    cron = pipeline.schedule if pipeline.id != "training" or owner else None
    asset_scheduled = pipeline.id == "training" and bool(asset_triggers)
    root = ir.artifacts_root.rstrip("/")
    default_runs_root = (
        f"{root}/airflow-runs" if mode == "kubernetes" or "://" not in root else ".mlspec/airflow-runs"
    )
    return DagView(
        mode=mode,
        ir=ir,
        pipeline=pipeline,
        dag_id=f"{system}_{pipeline.task_id}",
        file_stem=f"{system}_{pipeline.task_id}",
        tasks=tasks,
        conditions=conditions,
        cron=cron,
        asset_scheduled=asset_scheduled,
        emits_retrain=any(t.outlets_retrain for t in tasks),
        retrain_asset_name=f"{system}_retrain",
        retrain_asset_uri=contracts.retrain_event_uri(ir.system.name),
        variable_prefix=f"mlspec_{system}",
        default_runs_root=default_runs_root,
        tags=["mlspec", ir.system.name, pipeline.id],
    )


def _kubernetes_placement(ir: IR, step: Step, view: TaskView) -> None:
    placement = step.placement
    view.requests = {"cpu": placement.cpu, "memory": placement.memory}
    view.limits = dict(view.requests)
    if placement.gpu is not None:
        view.limits[placement.gpu.resource] = str(placement.gpu.count)
    view.node_selector = dict(placement.node_selector)
    view.tolerations = [{"key": t.key, "value": t.value, "effect": t.effect} for t in placement.tolerations]
    view.service_account = ir.service_account(step.service_account).name
    view.labels = {**ir.system.labels, contracts.SYSTEM_LABEL: ir.system.name, contracts.STEP_LABEL: step.id}
    spread = ir.training.distribution
    view.launches_job = step.action == "train" and spread is not None and spread.nodes > 1
