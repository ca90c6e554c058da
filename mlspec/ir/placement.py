"""Placement: which node pool each workload runs on and which accelerator it requests.

One resolver for lint and lowering: lint reports its problems at the spec line, lowering turns a lint-clean
spec into the IR's `NodePool`s and `Placement`s. Rules:
- A pool's accelerator and GPUs per node come from the spec or, for known instance types, the catalog; they
  must agree with the catalog when both are given.
- A workload with `node_pool` runs there; the pool must offer the requested GPU type and enough GPUs per node.
- A GPU workload without `node_pool` runs on the one pool that offers its GPU type; none or several is an
  error (never a silent fallback to another pool).
- A CPU workload without `node_pool` is not pinned (GPU pools are tainted, so it lands on CPU nodes).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlspec.ir.catalog import INSTANCE_GPUS, GpuVendor, gpu_vendor
from mlspec.spec import models as sm

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    path: KeyPath  # spec key path
    hint: str | None = None


@dataclass(frozen=True)
class PoolGpus:
    gpu_type: str | None
    per_node: int  # 0 for CPU pools
    vendor: GpuVendor | None


def pool_gpus(name: str, pool: sm.NodePool) -> tuple[PoolGpus, list[Problem]]:
    """The accelerator of a spec node pool, from the spec and the instance-type catalog."""
    path: KeyPath = ("infrastructure", "node_pools", name)
    known = INSTANCE_GPUS.get(pool.instance_type)
    problems: list[Problem] = []
    gpu_type = pool.accelerator or (known[0] if known else None)
    if pool.accelerator and known and known[0] != pool.accelerator:
        problems.append(
            Problem(
                "MS202",
                f"instance type {pool.instance_type} has {known[0]} accelerators, not {pool.accelerator}",
                (*path, "accelerator"),
                hint=f"accelerator: {known[0]}, or another instance type",
            )
        )
    if gpu_type is None:
        if pool.gpus_per_node is not None:
            problems.append(
                Problem(
                    "MS202",
                    f"node pool '{name}' sets gpus_per_node but no accelerator",
                    (*path, "gpus_per_node"),
                    hint="set accelerator (e.g. nvidia-a10g) or drop gpus_per_node",
                )
            )
        return PoolGpus(None, 0, None), problems
    vendor = gpu_vendor(gpu_type)
    if vendor is None:
        problems.append(_unknown_vendor(gpu_type, (*path, "accelerator")))
    per_node = pool.gpus_per_node or (known[1] if known else 0)
    if pool.gpus_per_node and known and pool.gpus_per_node != known[1]:
        problems.append(
            Problem(
                "MS202",
                f"instance type {pool.instance_type} has {known[1]} accelerator(s) per node, "
                f"not {pool.gpus_per_node}",
                (*path, "gpus_per_node"),
                hint=f"gpus_per_node: {known[1]}, or leave it out",
            )
        )
    if per_node == 0:
        problems.append(
            Problem(
                "MS202",
                f"node pool '{name}': GPUs per node of instance type {pool.instance_type} are not known",
                (*path, "instance_type"),
                hint="set gpus_per_node",
            )
        )
        per_node = 1
    return PoolGpus(gpu_type, per_node, vendor), problems


def _unknown_vendor(gpu_type: str, path: KeyPath) -> Problem:
    return Problem(
        "MS202",
        f"GPU type '{gpu_type}' names no known vendor",
        path,
        hint="GPU types start with nvidia- (nvidia.com/gpu), amd- (amd.com/gpu) or aws- (Neuron)",
    )


@dataclass(frozen=True)
class Request:
    """A workload's GPU and pool request, as the spec states it (after serving's accelerator default)."""

    gpu_type: str | None
    gpu_count: int
    node_pool: str | None
    path: KeyPath  # the spec's resources block of this workload
    what: str  # for messages: "training", "step 'prep'", "serving"


def choose_pool(spec: sm.Spec, req: Request) -> tuple[str | None, list[Problem]]:
    """The spec node pool name this workload runs on (None: not pinned), and the problems found."""
    infra = spec.infrastructure
    if req.gpu_type and gpu_vendor(req.gpu_type) is None:
        return None, [_unknown_vendor(req.gpu_type, (*req.path, "gpu", "type"))]
    if infra is None:
        if req.node_pool:
            return None, [
                Problem(
                    "MS202",
                    f"{req.what} names node pool '{req.node_pool}' but the spec has no infrastructure",
                    (*req.path, "node_pool"),
                )
            ]
        return None, []  # a cluster mlspec does not manage: the workload requests the resource, unpinned
    gpus = {name: pool_gpus(name, pool)[0] for name, pool in infra.node_pools.items()}
    if req.node_pool is not None:
        if req.node_pool not in infra.node_pools:
            from mlspec.diagnostics import did_you_mean

            return None, [
                Problem(
                    "MS202",
                    f"{req.what} names node pool '{req.node_pool}', which infrastructure.node_pools lacks",
                    (*req.path, "node_pool"),
                    hint=did_you_mean(req.node_pool, list(infra.node_pools))
                    or f"pools: {', '.join(sorted(infra.node_pools))}",
                )
            ]
        chosen = req.node_pool
        if req.gpu_type and gpus[chosen].gpu_type != req.gpu_type:
            offered = gpus[chosen].gpu_type or "no GPUs"
            return None, [
                Problem(
                    "MS202",
                    f"{req.what} asks for GPU '{req.gpu_type}' on node pool '{chosen}', which offers {offered}",
                    (*req.path, "gpu", "type"),
                )
            ]
    elif req.gpu_type:
        offering = sorted(name for name, g in gpus.items() if g.gpu_type == req.gpu_type)
        if not offering:
            from mlspec.diagnostics import did_you_mean

            types = sorted({g.gpu_type for g in gpus.values() if g.gpu_type})
            return None, [
                Problem(
                    "MS202",
                    f"{req.what} asks for GPU '{req.gpu_type}' but no node pool offers it"
                    + ("" if types else " (infrastructure.node_pools has no GPU pool)"),
                    (*req.path, "gpu", "type"),
                    hint=did_you_mean(req.gpu_type, types)
                    or (
                        f"pools offer {', '.join(types)}"
                        if types
                        else f"add a pool with accelerator: {req.gpu_type}"
                    ),
                )
            ]
        if len(offering) > 1:
            return None, [
                Problem(
                    "MS202",
                    f"{req.what} asks for GPU '{req.gpu_type}', which several node pools offer "
                    f"({', '.join(offering)})",
                    (*req.path, "gpu", "type"),
                    hint=f"pick one with node_pool: {offering[0]}",
                )
            ]
        chosen = offering[0]
    else:
        return None, []
    per_node = gpus[chosen].per_node
    if req.gpu_count > per_node > 0:
        return chosen, [
            Problem(
                "MS202",
                f"{req.what} asks for {req.gpu_count} GPUs per pod but nodes of pool '{chosen}' have {per_node}",
                (*req.path, "gpu", "count"),
                hint=f"count: {per_node} or less, more workers, or a larger instance type",
            )
        ]
    return chosen, []


def serving_request(spec: sm.Spec) -> tuple[Request | None, list[Problem]]:
    """The serving unit's request: `accelerator: gpu` needs a GPU type, from resources.gpu or the one GPU pool."""
    sv = spec.serving
    if sv is None:
        return None, []
    path: KeyPath = ("serving", "resources")
    gpu = sv.resources.gpu
    if sv.accelerator == "cpu":
        if gpu is not None:
            return None, [
                Problem(
                    "MS203",
                    "serving.resources.gpu is set but serving.accelerator is 'cpu'",
                    ("serving", "accelerator"),
                    hint="accelerator: gpu, or drop resources.gpu",
                )
            ]
        return Request(None, 0, sv.resources.node_pool, path, "serving"), []
    if gpu is not None:
        return Request(gpu.type, gpu.count, sv.resources.node_pool, path, "serving"), []
    infra = spec.infrastructure
    gpu_pools = sorted(
        (name, g.gpu_type)
        for name, pool in (infra.node_pools.items() if infra else [])
        if (g := pool_gpus(name, pool)[0]).gpu_type
    )
    if sv.resources.node_pool:
        pinned = dict(gpu_pools).get(sv.resources.node_pool)
        if pinned:
            return Request(pinned, 1, sv.resources.node_pool, path, "serving"), []
    if len(gpu_pools) == 1:
        return Request(gpu_pools[0][1], 1, sv.resources.node_pool, path, "serving"), []
    message = (
        "serving.accelerator is 'gpu' but no node pool has an accelerator"
        if not gpu_pools
        else f"serving.accelerator is 'gpu' and several node pools offer GPUs ({', '.join(n for n, _ in gpu_pools)})"
    )
    return None, [
        Problem(
            "MS203",
            message,
            ("serving", "accelerator"),
            hint="set serving.resources.gpu (type and count)"
            + (" or serving.resources.node_pool" if gpu_pools else ", and a GPU node pool"),
        )
    ]


def requests(spec: sm.Spec) -> list[Request]:
    """Every workload's request except serving's (see serving_request): training and user steps."""
    t = spec.training.resources
    out = [
        Request(
            t.gpu.type if t.gpu else None,
            t.gpu.count if t.gpu else 0,
            t.node_pool,
            ("training", "resources"),
            "training",
        )
    ]
    for i, step in enumerate(spec.steps):
        r = step.resources
        out.append(
            Request(
                r.gpu.type if r.gpu else None,
                r.gpu.count if r.gpu else 0,
                r.node_pool,
                ("steps", i, "resources"),
                f"step '{step.name}'",
            )
        )
    return out


def problems(spec: sm.Spec) -> list[Problem]:
    """Everything wrong with the spec's pools and placements (what lint reports)."""
    found: list[Problem] = []
    if spec.infrastructure:
        for name, pool in spec.infrastructure.node_pools.items():
            found += pool_gpus(name, pool)[1]
    for req in requests(spec):
        found += choose_pool(spec, req)[1]
    serving, serving_problems = serving_request(spec)
    found += serving_problems
    if serving is not None:
        found += choose_pool(spec, serving)[1]
    return found


# ------------------------------------------------------------------------------------------------ training spread


@dataclass(frozen=True)
class TrainingPlan:
    """How training spreads over pods (shared by lint's capacity check and lowering's IR Distribution).

    A worker is a torchrun node with `training.resources.gpu.count` GPUs and one process per GPU (one on CPU).
    Workers whose GPUs fit one node of their pool share one pod (no rendezvous across nodes); otherwise each
    worker is its own pod, started by the spec's launcher.
    """

    nodes: int
    processes_per_node: int
    gpus_per_pod: int  # 0 on CPU
    launcher: str  # none | standalone | job | trainjob
    pool: str | None  # spec node pool name, when pinned


def training_plan(spec: sm.Spec) -> TrainingPlan:
    t = spec.training
    workers = t.distributed.workers
    gpus = t.resources.gpu.count if t.resources.gpu else 0
    pool, _ = choose_pool(spec, requests(spec)[0])
    per_node = _per_node(spec, pool)
    if workers == 1 or (gpus and per_node and workers * gpus <= per_node):
        nodes, per_pod = 1, workers * gpus
        processes = max(per_pod, workers)
    else:
        nodes, per_pod, processes = workers, gpus, max(gpus, 1)
    if nodes * processes == 1:
        launcher = "none"
    elif nodes == 1:
        launcher = "standalone"
    else:
        launcher = t.distributed.launcher
    return TrainingPlan(nodes, processes, per_pod, launcher, pool)


def _per_node(spec: sm.Spec, pool: str | None) -> int:
    if pool is None or spec.infrastructure is None or pool not in spec.infrastructure.node_pools:
        return 0
    return pool_gpus(pool, spec.infrastructure.node_pools[pool])[0].per_node


def capacity_problems(spec: sm.Spec) -> list[Problem]:
    """MS224: the GPUs a workload needs at its peak exceed what its node pool can grow to.

    Training needs every worker at once (a collective waits for all ranks); serving needs replicas.max plus
    the rollout's surge pods (mlspec.ir.policy.peak_server_pods).
    """
    from mlspec.ir.policy import peak_server_pods

    infra = spec.infrastructure
    if infra is None:
        return []
    found = []
    plan = training_plan(spec)
    t = spec.training
    if plan.pool and plan.gpus_per_pod:
        per_node = _per_node(spec, plan.pool)
        need = _nodes_needed(plan.nodes, plan.gpus_per_pod, per_node)
        pool_max = infra.node_pools[plan.pool].max
        if need and need > pool_max:
            workers, gpus = t.distributed.workers, t.resources.gpu.count if t.resources.gpu else 0
            found.append(
                Problem(
                    "MS224",
                    f"training needs {workers} worker(s) x {gpus} GPU(s) at once, {need} node(s) of pool "
                    f"'{plan.pool}' ({per_node} GPUs each), but the pool grows to {pool_max}",
                    ("training", "distributed", "workers")
                    if workers > 1
                    else ("training", "resources", "gpu", "count"),
                    hint=f"infrastructure.node_pools.{plan.pool}.max: {need}, or fewer workers or GPUs",
                )
            )
    sv = spec.serving
    request, _ = serving_request(spec)
    if sv is not None and request is not None and request.gpu_count:
        pool, _ = choose_pool(spec, request)
        per_node = _per_node(spec, pool)
        peak = peak_server_pods(sv.rollout.strategy, sv.replicas.max)
        need = _nodes_needed(peak, request.gpu_count, per_node)
        if pool is not None and need and need > infra.node_pools[pool].max:
            found.append(
                Problem(
                    "MS224",
                    f"serving needs up to {peak} pods ({sv.replicas.max} replicas + "
                    f"{peak - sv.replicas.max} during a {sv.rollout.strategy} rollout) x {request.gpu_count} "
                    f"GPU(s), {need} node(s) of pool '{pool}' ({per_node} GPUs each), but the pool grows to "
                    f"{infra.node_pools[pool].max}",
                    ("serving", "replicas", "max"),
                    hint=f"infrastructure.node_pools.{pool}.max: {need}, or fewer replicas",
                )
            )
    return found


def _nodes_needed(pods: int, gpus_per_pod: int, per_node: int) -> int:
    """Nodes that hold `pods` pods of `gpus_per_pod` GPUs each (0 when the pod fits no node: MS202 says so)."""
    per = per_node // gpus_per_pod if gpus_per_pod else 0
    return -(-pods // per) if per else 0


def idle_gpu_problems(spec: sm.Spec) -> list[Problem]:
    """MS225 (a warning): GPUs a workload requests but cannot use."""
    found = []
    sv = spec.serving
    request, _ = serving_request(spec)
    if sv is not None and request is not None and request.gpu_count > 1:
        found.append(
            Problem(
                "MS225",
                f"the model server runs one ONNX Runtime session on one GPU: {request.gpu_count - 1} of the "
                f"{request.gpu_count} GPUs of each replica stay idle",
                ("serving", "resources", "gpu", "count"),
                hint="count: 1, and more replicas for throughput",
            )
        )
    plan = training_plan(spec)
    if plan.pool and plan.nodes > 1 and plan.gpus_per_pod:
        per_node = _per_node(spec, plan.pool)
        left = per_node % plan.gpus_per_pod if per_node else 0
        if left:
            found.append(
                Problem(
                    "MS225",
                    f"each node of pool '{plan.pool}' has {per_node} GPUs and holds "
                    f"{per_node // plan.gpus_per_pod} worker(s) of {plan.gpus_per_pod}: {left} GPU(s) per node "
                    "stay idle",
                    ("training", "resources", "gpu", "count"),
                    hint=f"a count that divides {per_node}",
                )
            )
    return found
