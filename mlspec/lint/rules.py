"""The semantic rules. Codes are stable; docs/rules.md documents each with a bad and a good example."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlspec.diagnostics import Diagnostic, Severity, did_you_mean
from mlspec.lint.cron import cron_error
from mlspec.lint.engine import RULES, LintContext, rule
from mlspec.spec import models as sm
from mlspec.units import is_quantity

# ------------------------------------------------------------------------------------------ evaluation


@rule("MS201", "gate metric is not computed by evaluation")
def gate_metric_known(ctx: LintContext) -> Iterator[Diagnostic]:
    e = ctx.spec.evaluation
    known = [*e.metrics, *e.custom_metrics]
    for i, gate in enumerate(e.gates):
        if gate.metric not in known:
            yield ctx.diag(
                "MS201",
                f"gate metric '{gate.metric}' is not among evaluation.metrics or custom_metrics",
                ("evaluation", "gates", i, "metric"),
                hint=did_you_mean(gate.metric, known) or f"add it to evaluation.metrics ({', '.join(known)})",
            )
    if e.champion and e.champion.compare_on not in known:
        yield ctx.diag(
            "MS201",
            f"champion metric '{e.champion.compare_on}' is not computed by evaluation",
            ("evaluation", "champion", "compare_on"),
            hint=did_you_mean(e.champion.compare_on, known),
        )
    t = ctx.spec.training.tuning
    if t and t.metric.name not in known:
        yield ctx.diag(
            "MS201",
            f"tuning metric '{t.metric.name}' is not among evaluation.metrics",
            ("training", "tuning", "metric", "name"),
        )


@rule("MS202", "GPU or node pool request that no node pool can satisfy")
def gpu_placement(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir import placement

    for problem in placement.problems(ctx.spec):
        if problem.code == "MS202":
            yield ctx.diag(problem.code, problem.message, problem.path, hint=problem.hint)


@rule("MS203", "serving on GPU without a GPU to serve on")
def gpu_serving(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir import placement

    for problem in placement.problems(ctx.spec):
        if problem.code == "MS203":
            yield ctx.diag(problem.code, problem.message, problem.path, hint=problem.hint)


@rule("MS204", "invalid cron expression")
def valid_cron(ctx: LintContext) -> Iterator[Diagnostic]:
    crons: list[tuple[tuple, str]] = []
    if ctx.spec.monitoring:
        crons.append((("monitoring", "schedule"), ctx.spec.monitoring.schedule))
    if ctx.spec.retraining:
        for i, t in enumerate(ctx.spec.retraining.triggers):
            if isinstance(t, sm.ScheduleTrigger):
                crons.append((("retraining", "triggers", i, "cron"), t.cron))
    for path, expr in crons:
        problem = cron_error(expr)
        if problem:
            yield ctx.diag(
                "MS204",
                f"invalid cron expression {expr!r}: {problem}",
                path,
                hint="five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * 1'",
            )


@rule("MS205", "retraining trigger on something that is not monitored")
def trigger_monitored(ctx: LintContext) -> Iterator[Diagnostic]:
    r, m = ctx.spec.retraining, ctx.spec.monitoring
    if r is None:
        return
    for i, t in enumerate(r.triggers):
        if isinstance(t, sm.DriftTrigger) and (m is None or m.drift is None):
            yield ctx.diag(
                "MS205",
                "drift trigger but monitoring.drift is not configured",
                ("retraining", "triggers", i, "on"),
                hint="add monitoring.drift",
            )
        if isinstance(t, sm.PerformanceTrigger):
            if m is None or m.performance is None:
                yield ctx.diag(
                    "MS205",
                    f"performance trigger on '{t.metric}' but monitoring.performance is not configured",
                    ("retraining", "triggers", i, "metric"),
                )
            elif m.performance.metric != t.metric:
                yield ctx.diag(
                    "MS205",
                    f"trigger metric '{t.metric}' is not the monitored metric '{m.performance.metric}'",
                    ("retraining", "triggers", i, "metric"),
                )
            if t.below is None and t.above is None:
                yield ctx.diag(
                    "MS205", "performance trigger needs 'below' or 'above'", ("retraining", "triggers", i)
                )
        if isinstance(t, sm.VolumeTrigger) and m is None:
            yield ctx.diag(
                "MS205",
                "volume trigger but no monitoring section counts new rows",
                ("retraining", "triggers", i, "on"),
            )


@rule("MS206", "minimum greater than maximum")
def min_le_max(ctx: LintContext) -> Iterator[Diagnostic]:
    sv = ctx.spec.serving
    if sv and sv.replicas.min > sv.replicas.max:
        yield ctx.diag(
            "MS206",
            f"serving.replicas.min ({sv.replicas.min}) is greater than max ({sv.replicas.max})",
            ("serving", "replicas", "min"),
        )
    if ctx.spec.infrastructure:
        for name, pool in ctx.spec.infrastructure.node_pools.items():
            if pool.min > pool.max:
                yield ctx.diag(
                    "MS206",
                    f"node pool '{name}' min ({pool.min}) is greater than max ({pool.max})",
                    ("infrastructure", "node_pools", name, "min"),
                )
            if pool.desired is not None and not pool.min <= pool.desired <= pool.max:
                yield ctx.diag(
                    "MS206",
                    f"node pool '{name}' desired ({pool.desired}) is outside min..max",
                    ("infrastructure", "node_pools", name, "desired"),
                )
    for name, col in ctx.spec.data.schema_.columns.items():
        if col.min is not None and col.max is not None and col.min > col.max:
            yield ctx.diag(
                "MS206",
                f"column '{name}' min ({col.min}) is greater than max ({col.max})",
                ("data", "schema", "columns", name, "min"),
            )


@rule("MS207", "rollout steps must increase and end at 100")
def rollout_steps(ctx: LintContext) -> Iterator[Diagnostic]:
    sv = ctx.spec.serving
    if sv is None:
        return
    r = sv.rollout
    path = ("serving", "rollout", "steps")
    if r.strategy == "canary":
        if not r.steps:
            yield ctx.diag(
                "MS207",
                "canary rollout needs steps, e.g. [10, 25, 50, 100]",
                ("serving", "rollout", "strategy"),
            )
            return
        if any(b <= a for a, b in zip(r.steps, r.steps[1:], strict=False)):
            yield ctx.diag("MS207", f"canary steps {r.steps} are not strictly increasing", path)
        if r.steps[-1] != 100:
            yield ctx.diag("MS207", f"canary steps {r.steps} do not end at 100", path, hint="append 100")
        if r.step_duration is None:
            yield ctx.diag("MS207", "canary rollout needs step_duration", ("serving", "rollout", "strategy"))
    if r.strategy == "a-b" and r.traffic_split is None:
        yield ctx.diag(
            "MS207",
            "a-b rollout needs traffic_split (percent to the challenger)",
            ("serving", "rollout", "strategy"),
        )
    if r.strategy == "a-b" and r.experiment_duration is None:
        yield ctx.diag("MS207", "a-b rollout needs experiment_duration", ("serving", "rollout", "strategy"))


# Thresholds beyond these make a drift method meaningless (KS and JS are bounded by 1).
_DRIFT_RANGES = {
    "psi": (0.0, 5.0),
    "kl": (0.0, 10.0),
    "js": (0.0, 1.0),
    "ks": (0.0, 1.0),
    "wasserstein": (0.0, 100.0),
}


@rule("MS208", "drift threshold outside the method's range")
def drift_threshold(ctx: LintContext) -> Iterator[Diagnostic]:
    checks: list[tuple[tuple, str, float]] = []
    if ctx.spec.monitoring and ctx.spec.monitoring.drift:
        d = ctx.spec.monitoring.drift
        checks.append((("monitoring", "drift", "threshold"), d.method, d.threshold))
    for i, c in enumerate(ctx.spec.data.checks):
        if isinstance(c, sm.DriftCheck):
            checks.append((("data", "checks", i, "threshold"), c.method, c.threshold))
    if ctx.spec.retraining and ctx.spec.monitoring and ctx.spec.monitoring.drift:
        for i, t in enumerate(ctx.spec.retraining.triggers):
            if isinstance(t, sm.DriftTrigger) and t.threshold is not None:
                checks.append(
                    (
                        ("retraining", "triggers", i, "threshold"),
                        ctx.spec.monitoring.drift.method,
                        t.threshold,
                    )
                )
    for path, method, threshold in checks:
        low, high = _DRIFT_RANGES[method]
        if not low < threshold <= high:
            yield ctx.diag(
                "MS208", f"drift threshold {threshold} is outside ({low}, {high}] for method '{method}'", path
            )


@rule("MS209", "PII column used as a model feature")
def pii_feature(ctx: LintContext) -> Iterator[Diagnostic]:
    schema = ctx.spec.data.schema_
    for name, col in schema.columns.items():
        if col.pii and col.role == "feature" and name != schema.target:
            yield ctx.diag(
                "MS209",
                f"column '{name}' is marked pii but used as a feature",
                ("data", "schema", "columns", name, "pii"),
                hint="set role: id or role: ignore, or drop the column",
            )


_SECRET_PATTERNS = [
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("AWS secret access key", re.compile(r"(?i)aws.{0,20}secret.{0,20}[=:]\s*[A-Za-z0-9/+=]{40}")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("password in a URI", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@$]+@")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
]
_SECRET_KEYS = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|access[_-]?key)$")


@rule("MS210", "secret in the spec")
def literal_secret(ctx: LintContext) -> Iterator[Diagnostic]:
    # Every spec value reaches the IR, and the IR is written into the generated files that teams commit:
    # a secret is refused whether it is literal or arrives through ${VAR}.
    for path, value in ctx.walk_strings():
        source = "from ${VAR}" if path in ctx.source_map.interpolated else "literal"
        label = next((name for name, pattern in _SECRET_PATTERNS if pattern.search(value)), None)
        key = path[-1] if path else ""
        if label is None and isinstance(key, str) and _SECRET_KEYS.search(key) and value:
            label = f"key '{key}'"
        if label:
            yield ctx.diag(
                "MS210",
                f"secret in the spec ({label}, {source}); it would be written into the generated files",
                path,
                hint="leave credentials out of the spec: the runtime and the server read them from their "
                "environment (MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN, IRSA for AWS)",
            )


@rule("MS211", "image without a pinned tag or digest")
def image_pinned(ctx: LintContext) -> Iterator[Diagnostic]:
    images: list[tuple[tuple[str | int, ...], str]] = [(("images", "runtime"), ctx.spec.images.runtime)]
    images += [(("steps", i, "image"), s.image) for i, s in enumerate(ctx.spec.steps) if s.image]
    for path, image in images:
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        if ":" not in last:
            yield ctx.diag("MS211", f"image '{image}' has no tag", path, hint="pin a version tag or a digest")
        elif last.rsplit(":", 1)[1] == "latest":
            yield ctx.diag(
                "MS211",
                f"image '{image}' uses the mutable tag 'latest'",
                path,
                hint="pin a version tag or a digest",
            )


@rule("MS212", "invalid Kubernetes resource quantity")
def valid_quantities(ctx: LintContext) -> Iterator[Diagnostic]:
    blocks: list[tuple[tuple, sm.Resources]] = [(("training", "resources"), ctx.spec.training.resources)]
    blocks += [(("steps", i, "resources"), s.resources) for i, s in enumerate(ctx.spec.steps)]
    if ctx.spec.serving:
        blocks.append((("serving", "resources"), ctx.spec.serving.resources))
    for path, res in blocks:
        for field in ("cpu", "memory"):
            value = getattr(res, field)
            if value is not None and not is_quantity(value):
                yield ctx.diag(
                    "MS212",
                    f"invalid Kubernetes quantity {value!r} for {field}",
                    (*path, field),
                    hint="e.g. cpu: 2 or 500m, memory: 16Gi",
                )
            elif field == "memory" and isinstance(value, str) and value.endswith("m"):
                yield ctx.diag(
                    "MS212", f"memory {value!r} is in millibytes", (*path, field), hint="did you mean Mi?"
                )


_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@rule("MS213", "bucket name illegal for the cloud")
def bucket_name(ctx: LintContext) -> Iterator[Diagnostic]:
    infra = ctx.spec.infrastructure
    if infra is None:
        return
    names = [(("infrastructure", "storage", "artifacts_bucket"), infra.storage.artifacts_bucket)]
    if infra.state:
        names.append((("infrastructure", "state", "bucket"), infra.state.bucket))
    for path, name in names:
        problem = None
        if not _S3_BUCKET.fullmatch(name):
            problem = (
                "3-63 characters of lowercase letters, digits, '.' and '-', starting and ending alphanumeric"
            )
        elif ".." in name or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
            problem = "no '..' and not an IP address"
        elif name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
            problem = "reserved prefix or suffix"
        if problem:
            yield ctx.diag("MS213", f"bucket name '{name}' is illegal on {infra.cloud}: {problem}", path)


@rule("MS214", "step dependency cycle or unknown step")
def step_graph(ctx: LintContext) -> Iterator[Diagnostic]:
    steps = ctx.spec.steps
    from mlspec.ir.catalog import BUILTIN_STEPS

    builtin = {b.id for b in BUILTIN_STEPS if b.pipeline == "training"}
    known = {*builtin, *(s.name for s in steps)}
    graph: dict[str, set[str]] = {s.name: set() for s in steps}
    seen: dict[str, int] = {}
    for i, s in enumerate(steps):
        if s.name in seen:
            yield ctx.diag("MS214", f"step name '{s.name}' is used twice", ("steps", i, "name"))
        if s.name in {b.id for b in BUILTIN_STEPS}:
            yield ctx.diag(
                "MS214", f"step name '{s.name}' is reserved for a built-in step", ("steps", i, "name")
            )
        seen[s.name] = i
        for field in ("before", "after"):
            targets = [getattr(s, field)] if isinstance(getattr(s, field), str) else getattr(s, field)
            for j, target in enumerate(targets):
                path = ("steps", i, field) if isinstance(getattr(s, field), str) else ("steps", i, field, j)
                if target not in known:
                    yield ctx.diag(
                        "MS214",
                        f"step '{s.name}' refers to unknown step '{target}'",
                        path,
                        hint=did_you_mean(target, known),
                    )
                elif field == "after" and target in graph:
                    graph[s.name].add(target)
                elif field == "before" and target in graph:
                    graph[target].add(s.name)
    cycle = _find_cycle(graph)
    if cycle:
        first = seen.get(cycle[0], 0)
        yield ctx.diag(
            "MS214", "step dependency cycle: " + " -> ".join([*cycle, cycle[0]]), ("steps", first, "name")
        )


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first dependency cycle found by an iterative depth-first search (deep chains must not recurse)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if start in state:
            continue
        path: list[str] = [start]
        iterators = [iter(sorted(graph.get(start, ())))]
        state[start] = 1
        while iterators:
            dep = next(iterators[-1], None)
            if dep is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(dep) == 1:
                return path[path.index(dep) :]
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                iterators.append(iter(sorted(graph.get(dep, ()))))
    return None


@rule("MS215", "environment overlay does not produce a valid spec")
def environment_overlays(ctx: LintContext) -> Iterator[Diagnostic]:
    from pydantic import ValidationError

    from mlspec.spec.resolve import deep_merge
    from mlspec.spec.validate import errors_to_diagnostics

    for env, overlay in ctx.spec.environments.items():
        if not isinstance(overlay, dict):
            continue
        if "environments" in overlay:
            yield ctx.diag(
                "MS215",
                f"environment '{env}' may not define environments",
                ("environments", env, "environments"),
                at_key=True,
            )
            continue
        try:
            sm.Spec.model_validate(deep_merge(ctx.data, overlay))
        except ValidationError as exc:
            for d in errors_to_diagnostics(exc, deep_merge(ctx.data, overlay), ctx.source_map):
                in_overlay = ("environments", env, *d.key_path)
                yield ctx.diag(
                    "MS215",
                    f"environment '{env}': {d.message}",
                    in_overlay,
                    hint=d.hint,
                    at_key=d.code in ("MS104", "MS101"),
                )


@rule("MS216", "unknown column referenced")
def known_columns(ctx: LintContext) -> Iterator[Diagnostic]:
    d = ctx.spec.data
    columns = list(d.schema_.columns)
    refs: list[tuple[tuple, str]] = [(("data", "schema", "target"), d.schema_.target)]
    if d.split.stratify:
        refs.append((("data", "split", "stratify"), d.split.stratify))
    for key, checks in (("checks", d.checks), ("raw_checks", d.raw_checks)):
        for i, c in enumerate(checks):
            if isinstance(c, sm.NotNullCheck | sm.UniqueCheck):
                refs += [(("data", key, i, "columns", j), col) for j, col in enumerate(c.columns)]
            if isinstance(c, sm.FreshnessCheck):
                refs.append((("data", key, i, "column"), c.column))
            if isinstance(c, sm.DriftCheck) and isinstance(c.features, list):
                refs += [(("data", key, i, "features", j), col) for j, col in enumerate(c.features)]
    m = ctx.spec.monitoring
    if m and m.drift and isinstance(m.drift.features, list):
        refs += [(("monitoring", "drift", "features", j), col) for j, col in enumerate(m.drift.features)]
    for path, col in refs:
        if col not in columns:
            yield ctx.diag("MS216", f"unknown column '{col}'", path, hint=did_you_mean(col, columns))


@rule("MS217", "unknown data source referenced")
def known_sources(ctx: LintContext) -> Iterator[Diagnostic]:
    sources = list(ctx.spec.data.sources)
    for key, checks in (("checks", ctx.spec.data.checks), ("raw_checks", ctx.spec.data.raw_checks)):
        for i, c in enumerate(checks):
            if isinstance(c, sm.DriftCheck) and c.against not in sources:
                yield ctx.diag(
                    "MS217",
                    f"drift check against unknown source '{c.against}'",
                    ("data", key, i, "against"),
                    hint=did_you_mean(c.against, sources) or "add it under data.sources",
                )


@rule("MS218", "metric does not fit the task")
def metric_fits_task(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.spec.resolve import infer_task

    task = infer_task(ctx.spec.data.schema_)
    wrong = sm.REGRESSION_METRICS if task == "classification" else sm.CLASSIFICATION_METRICS
    for i, metric in enumerate(ctx.spec.evaluation.metrics):
        if metric in wrong:
            yield ctx.diag(
                "MS218", f"metric '{metric}' does not apply to a {task} task", ("evaluation", "metrics", i)
            )


@rule("MS219", "a target's backend is not installed, so lint cannot check it")
def targets_installed(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.backends import available_backends

    installed = available_backends()
    for i, target in enumerate(ctx.spec.targets):
        if target not in installed:
            yield ctx.diag(
                "MS219",
                f"target '{target}' cannot be checked: its backend is not installed",
                ("targets", i),
                hint=f"pip install 'mlspec[{target}]' (from a checkout: pip install -e backends/{target})",
                severity=Severity.WARNING,
            )


@rule("MS220", "SLO and rollback thresholds disagree")
def slo_consistency(ctx: LintContext) -> Iterator[Diagnostic]:
    sv = ctx.spec.serving
    if sv is None or sv.slo is None:
        return
    limit = sv.rollout.rollback_on.latency_p99_ms
    if limit is not None and limit < sv.slo.latency_p99_ms:
        yield ctx.diag(
            "MS220",
            f"rollback latency {limit} ms is stricter than the SLO ({sv.slo.latency_p99_ms} ms)",
            ("serving", "rollout", "rollback_on", "latency_p99_ms"),
            severity=Severity.WARNING,
        )
    # A canary that errs at this rate burns the availability budget faster than the fastest page alert:
    # the page fires before the rollback does.
    from mlspec.ir.policy import PAGE_BURN_RATE

    error_rate = sv.rollout.rollback_on.error_rate
    page_rate = PAGE_BURN_RATE * (1 - sv.slo.availability_percent / 100)
    if error_rate is not None and error_rate > page_rate:
        yield ctx.diag(
            "MS220",
            f"rollback error rate {error_rate} is looser than the SLO's page threshold "
            f"({PAGE_BURN_RATE}x the {100 - sv.slo.availability_percent:.3g}% error budget = {page_rate:.4g})",
            ("serving", "rollout", "rollback_on", "error_rate"),
            severity=Severity.WARNING,
        )


@rule("MS221", "target column has the wrong role or is missing")
def target_column(ctx: LintContext) -> Iterator[Diagnostic]:
    schema = ctx.spec.data.schema_
    col = schema.columns.get(schema.target)
    if col is not None and col.role not in ("feature", "target"):
        yield ctx.diag(
            "MS221",
            f"target column '{schema.target}' has role '{col.role}'",
            ("data", "schema", "columns", schema.target, "role"),
        )
    if col is not None and col.pii:
        yield ctx.diag(
            "MS221",
            f"target column '{schema.target}' is marked pii",
            ("data", "schema", "columns", schema.target),
        )


@rule("MS222", "data source format cannot be inferred")
def source_format(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir.policy import infer_format

    for name, source in ctx.spec.data.sources.items():
        if source.format is None and infer_format(source.uri) is None:
            yield ctx.diag(
                "MS222",
                f"cannot tell the format of data source '{name}' from {source.uri!r}",
                ("data", "sources", name, "uri"),
                hint="name the file .csv, .csv.gz or .parquet, or set format: csv | parquet",
            )


@rule("MS223", "optimization goal contradicts the metric's direction")
def metric_goal(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir.policy import metric_goal as goal_of

    t = ctx.spec.training.tuning
    if t and t.metric.goal is not None and t.metric.goal != goal_of(t.metric.name):
        yield ctx.diag(
            "MS223",
            f"'{t.metric.name}' is better when {'lower' if goal_of(t.metric.name) == 'minimize' else 'higher'}: "
            f"goal '{t.metric.goal}' would pick the worst trial",
            ("training", "tuning", "metric", "goal"),
            hint=f"goal: {goal_of(t.metric.name)}, or leave goal out",
        )


@rule("MS224", "a workload needs more GPUs at its peak than its node pool can grow to")
def pool_capacity(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir import placement

    if placement.problems(ctx.spec):
        return  # MS202/MS203: no placement to size
    for problem in placement.capacity_problems(ctx.spec):
        yield ctx.diag(problem.code, problem.message, problem.path, hint=problem.hint)


@rule("MS225", "GPUs requested that nothing uses")
def idle_gpus(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir import placement

    if placement.problems(ctx.spec):
        return
    for problem in placement.idle_gpu_problems(ctx.spec):
        yield ctx.diag(
            problem.code, problem.message, problem.path, hint=problem.hint, severity=Severity.WARNING
        )


@rule("MS226", "data flow of the preparation steps is broken or ambiguous")
def data_flow(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir import dataflow

    for problem in dataflow.resolve(ctx.spec).problems:
        yield ctx.diag(problem.code, problem.message, problem.path, hint=problem.hint)


@rule("MS227", "a feature that a step adds would never reach the model server")
def serving_transform(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir import dataflow

    flow = dataflow.resolve(ctx.spec)
    if flow.problems:
        return  # MS226 first: the flow decides who adds what
    for problem in dataflow.serving_problems(ctx.spec, flow):
        yield ctx.diag(problem.code, problem.message, problem.path, hint=problem.hint)


@rule("MS228", "training spans nodes but no target declares its job")
def distributed_needs_kubernetes(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir import placement

    spec = ctx.spec
    if placement.problems(spec) or placement.training_plan(spec).nodes == 1:
        return
    launching = [
        t
        for t in spec.targets
        if t == "kubeflow" or (t == "airflow" and spec.orchestration.airflow_mode == "kubernetes")
    ]
    if launching and "kubernetes" not in spec.targets:
        yield ctx.diag(
            "MS228",
            f"training spans {spec.training.distributed.workers} nodes: the {' and '.join(launching)} train step "
            "launches the workers from the job template, RBAC and network policy that the kubernetes target "
            "declares, and kubernetes is not in targets",
            ("training", "distributed", "workers"),
            hint="add kubernetes to targets, or fit the workers on one node",
        )


@rule("MS229", "the runtime image names another registry than the system's ECR repository")
def image_registry(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir.platform import split_reference

    infra = ctx.spec.infrastructure
    if infra is None or infra.cloud != "aws" or infra.account_id is None:
        return
    repository, tag = split_reference(ctx.spec.images.runtime)
    ecr = f"{infra.account_id}.dkr.ecr.{infra.region}.amazonaws.com/{infra.container_registry or ctx.spec.metadata.name}"
    if repository != ecr:
        yield ctx.diag(
            "MS229",
            f"images.runtime names {repository}, but the image is built into and pulled from the system's ECR "
            f"repository: every target uses {ecr}:{tag}",
            ("images", "runtime"),
            hint=f"runtime: {ecr}:{tag}",
            severity=Severity.WARNING,
        )


from mlspec.lint import (  # noqa: E402, F401  (MS240+ and MS301, which lint predicts)
    capabilities,
    loop,
    values,
)

RULE_DOCS = {code: r.summary for code, r in RULES.items()}
