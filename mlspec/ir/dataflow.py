"""Data flow through the preparation steps: which version of each data set a step reads, who adds a column.

One resolver for lint and lowering (like placement.py): lint reports its problems at the spec line, lowering
turns a lint-clean spec into the IR's step inputs and outputs, `data.prepared` and `data.transforms`. Rules:
- Data sets are the data sources and the new data sets steps write. A step output named like an existing
  data set is a new version of it; a step reads the latest version written by a step that runs before it.
- Reading implies order: a step runs after every writer of its inputs that is not declared to run after it.
  Two writers of one data set must be ordered (`after`/`before`), or which version is read is ambiguous.
- A step that writes a data source runs before validate-data, which checks and splits the last version (the
  prepared data); with raw checks, validate-raw runs before every step.
- data.schema describes the prepared training data: a column that a step `adds` is not in the raw sources,
  and each version of a source carries the raw columns plus those added up to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from mlspec.ir.placement import KeyPath, Problem
from mlspec.spec import models as sm

VALIDATE_RAW, VALIDATE_DATA = "validate-raw", "validate-data"


@dataclass(frozen=True)
class Version:
    name: str
    step: str | None  # None: the data source as read


@dataclass
class Flow:
    after: dict[
        str, set[str]
    ]  # step -> steps it must run after because of the data it reads (and raw checks)
    inputs: dict[str, list[Version]]  # user step -> the versions of its inputs, in its order
    prepared: dict[str, Version]  # data source -> the version validate-data reads
    added_by: dict[str, str]  # column -> the step that adds it
    columns: dict[tuple[str, str], dict[str, sm.Column]]  # (step, output) -> the schema of that version
    chain: list[str]  # steps writing train, in order: whose transforms the server repeats
    problems: list[Problem] = field(default_factory=list)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _explicit_edges(spec: sm.Spec, builtin: list[str]) -> dict[str, set[str]]:
    """step -> the steps it runs after: before/after, and the builtin steps in their pipeline order."""
    known = set(builtin) | {s.name for s in spec.steps}
    edges: dict[str, set[str]] = {name: set() for name in known}
    for earlier, later in pairwise(builtin):
        edges[later].add(earlier)
    for s in spec.steps:
        for target in _as_list(s.before):
            if target in known:
                edges[target].add(s.name)
        for source in _as_list(s.after):
            if source in known:
                edges[s.name].add(source)
    return edges


def _ancestors(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Transitive closure of `edges` (iterative; a node in a cycle is its own ancestor)."""
    out: dict[str, set[str]] = {}
    for start in edges:
        seen: set[str] = set()
        stack = list(edges[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(edges.get(node, ()))
        out[start] = seen
    return out


def resolve(spec: sm.Spec) -> Flow:
    from mlspec.ir.catalog import BUILTIN_STEPS

    builtin = [b.id for b in BUILTIN_STEPS if b.pipeline == "training"]
    flow = Flow(after={}, inputs={}, prepared={}, added_by={}, columns={}, chain=[])
    steps = {s.name: (i, s) for i, s in enumerate(spec.steps)}
    sources = set(spec.data.sources)
    flow.prepared = {name: Version(name, None) for name in sorted(sources)}
    placeholders = any(_input_refs(arg) for s in spec.steps for arg in s.command or [])
    if not any(s.inputs or s.outputs for s in spec.steps) and not spec.data.raw_checks and not placeholders:
        return flow  # no data contract anywhere: nothing to resolve (and no cost on long step chains)
    edges = _explicit_edges(spec, builtin)
    declared = _ancestors(edges)
    if any(name in declared[name] for name in steps):
        return flow  # MS214 reports the cycle of before/after

    writers: dict[str, list[str]] = {}
    for name, (i, s) in steps.items():
        for out in s.outputs:
            writers.setdefault(out, []).append(name)
            if out in sources and VALIDATE_DATA in declared[name]:
                flow.problems.append(
                    Problem(
                        "MS226",
                        f"step '{name}' writes data source '{out}' but runs after validate-data, which checks "
                        "and splits the prepared data",
                        ("steps", i, "outputs", out),
                        hint="steps that write a data source run before validate-data: drop the after/before",
                    )
                )
        if any(out in sources for out in s.outputs):
            edges[VALIDATE_DATA].add(name)
        flow.after[name] = {VALIDATE_RAW} if spec.data.raw_checks else set()
        if s.command is None and (len(s.inputs) != 1 or list(s.outputs) != s.inputs):
            flow.problems.append(
                Problem(
                    "MS226",
                    f"step '{name}' has a transform and no command: it needs one input and one output of "
                    "the same name (the runtime applies the transform to it)",
                    ("steps", i, "transform"),
                    hint="e.g. inputs: [train] and outputs: {train: {adds: [...]}}",
                )
            )
        for j, arg in enumerate(s.command or []):
            for ref in _input_refs(arg):
                if ref not in s.inputs:
                    flow.problems.append(
                        Problem(
                            "MS226",
                            f"step '{name}' uses {{inputs.{ref}}} but does not list '{ref}' in inputs",
                            ("steps", i, "command", j),
                            hint=f"inputs: [{ref}]",
                        )
                    )
    if spec.data.raw_checks:
        for name in steps:
            edges[name].add(VALIDATE_RAW)
    known_order = _ancestors(edges)

    for name, (i, s) in steps.items():
        for j, dataset in enumerate(s.inputs):
            if dataset not in sources and dataset not in writers:
                from mlspec.diagnostics import did_you_mean

                flow.problems.append(
                    Problem(
                        "MS226",
                        f"step '{name}' reads '{dataset}', which is no data source and no step writes",
                        ("steps", i, "inputs", j),
                        hint=did_you_mean(dataset, [*sources, *writers])
                        or f"data sets: {', '.join(sorted({*sources, *writers}))}",
                    )
                )
                continue
            for writer in writers.get(dataset, []):
                if writer == name or name in known_order[writer]:
                    continue  # the step itself, or a writer declared to run after it (a later version)
                if writer not in known_order[name] and dataset in s.outputs:
                    flow.problems.append(_ambiguous(dataset, name, writer, ("steps", i, "inputs", j)))
                    continue
                flow.after[name].add(writer)
    for name, extra in flow.after.items():
        edges[name] |= extra
    order = _ancestors(edges)
    cycle = sorted(name for name in steps if name in order[name])
    if cycle:
        flow.problems.append(
            Problem(
                "MS226",
                "the data the steps read and write orders them in a cycle: " + ", ".join(cycle),
                ("steps", steps[cycle[0]][0], "inputs"),
                hint="a step cannot read a data set that a step running after it writes",
            )
        )
        return flow

    for name, (i, s) in steps.items():
        flow.inputs[name] = []
        for j, dataset in enumerate(s.inputs):
            earlier = [w for w in writers.get(dataset, []) if w in order[name] and w != name]
            latest = _latest(earlier, order)
            if latest is None and len(earlier) > 1:
                flow.problems.append(
                    _ambiguous(dataset, *_unordered(earlier, order), ("steps", i, "inputs", j))
                )
            flow.inputs[name].append(Version(dataset, latest))
    for source in sorted(sources):
        chain = writers.get(source, [])
        last = _latest(chain, order)
        if last is None and len(chain) > 1:
            first, second = _unordered(chain, order)
            flow.problems.append(_ambiguous(source, first, second, ("steps", steps[second][0], "outputs")))
        flow.prepared[source] = Version(source, last)
    flow.chain = sorted(writers.get("train", []), key=lambda w: len(order[w]))
    _columns(spec, flow, steps, sources, order, writers)
    return flow


def _input_refs(arg: str) -> list[str]:
    import re

    return re.findall(r"\{inputs\.([^{}]+)\}", arg)


def _columns(spec, flow, steps, sources, order, writers) -> None:
    """Which step adds each column, the schema of each written version, and the problems of `adds`."""
    schema = spec.data.schema_.columns
    for name, (i, s) in steps.items():
        for out, o in s.outputs.items():
            for j, col in enumerate(o.adds):
                path: KeyPath = ("steps", i, "outputs", out, "adds", j)
                if out not in sources:
                    flow.problems.append(
                        Problem(
                            "MS226",
                            f"step '{name}' adds column '{col}' to '{out}', which is not a data source",
                            path,
                            hint="adds extends a source's schema; a new data set states its columns",
                        )
                    )
                elif col not in schema:
                    from mlspec.diagnostics import did_you_mean

                    flow.problems.append(
                        Problem(
                            "MS226",
                            f"step '{name}' adds column '{col}', which data.schema does not declare",
                            path,
                            hint=did_you_mean(col, list(schema))
                            or "declare its type under data.schema.columns",
                        )
                    )
                elif col in flow.added_by and flow.added_by[col] != name:
                    flow.problems.append(
                        Problem(
                            "MS226",
                            f"column '{col}' is added by steps '{flow.added_by[col]}' and '{name}'",
                            path,
                        )
                    )
                else:
                    flow.added_by[col] = name
    for col, step in flow.added_by.items():
        if step not in flow.chain:
            flow.problems.append(
                Problem(
                    "MS226",
                    f"column '{col}' is added by step '{step}', which does not write 'train': training "
                    "would not have it",
                    ("data", "schema", "columns", col),
                )
            )
    for name in _in_order(steps, order):
        i, s = steps[name]
        for out, o in s.outputs.items():
            if out in sources:
                gained = {w for w in writers[out] if w in order[name]} | {name}
                flow.columns[(name, out)] = {
                    c: col
                    for c, col in schema.items()
                    if c not in flow.added_by or flow.added_by[c] in gained
                }
                continue
            earlier = _latest([w for w in writers[out] if w in order[name]], order)
            if o.columns is not None:
                flow.columns[(name, out)] = dict(o.columns)
            elif earlier is not None and (earlier, out) in flow.columns:
                flow.columns[(name, out)] = flow.columns[(earlier, out)]
            else:
                flow.problems.append(
                    Problem(
                        "MS226",
                        f"step '{name}' writes a new data set '{out}' without its columns",
                        ("steps", i, "outputs", out),
                        hint="columns: {name: {type: ...}}, the schema the runtime checks it against",
                    )
                )
    raw = [c for c in schema if c not in flow.added_by]
    for i, check in enumerate(spec.data.raw_checks):
        for path, col in _check_columns(check, ("data", "raw_checks", i)):
            if col in flow.added_by:
                flow.problems.append(
                    Problem(
                        "MS226",
                        f"raw check names column '{col}', which step '{flow.added_by[col]}' adds: the raw "
                        "data has no such column",
                        path,
                        hint=f"raw columns: {', '.join(raw)}",
                    )
                )


def _in_order(steps: dict, order: dict[str, set[str]]) -> list[str]:
    return sorted(steps, key=lambda name: (len(order[name]), steps[name][0]))


def _check_columns(check, path: KeyPath) -> list[tuple[KeyPath, str]]:
    if isinstance(check, sm.NotNullCheck | sm.UniqueCheck):
        return [((*path, "columns", j), c) for j, c in enumerate(check.columns)]
    if isinstance(check, sm.FreshnessCheck):
        return [((*path, "column"), check.column)]
    if isinstance(check, sm.DriftCheck) and isinstance(check.features, list):
        return [((*path, "features", j), c) for j, c in enumerate(check.features)]
    return []


def _first_source(step: sm.UserStep, sources: set[str]) -> str:
    return next(out for out in step.outputs if out in sources)


def _latest(writers: list[str], order: dict[str, set[str]]) -> str | None:
    """The writer that runs after every other one (None: no writer, or they are not ordered)."""
    return next((w for w in writers if all(o == w or o in order[w] for o in writers)), None)


def _unordered(writers: list[str], order: dict[str, set[str]]) -> tuple[str, str]:
    for a in writers:
        for b in writers:
            if a < b and a not in order[b] and b not in order[a]:
                return a, b
    return writers[0], writers[-1]


def _ambiguous(dataset: str, first: str, second: str, path: KeyPath) -> Problem:
    return Problem(
        "MS226",
        f"steps '{first}' and '{second}' both write '{dataset}' and neither runs after the other: which version "
        "is read is ambiguous",
        path,
        hint=f"order them, e.g. after: {first} on step '{second}'",
    )


def serving_problems(spec: sm.Spec, flow: Flow) -> list[Problem]:
    """MS227: a model feature added by a step without a transform would never reach the server."""
    features = {n for n, c in spec.data.schema_.columns.items() if c.role == "feature"}
    steps = {s.name: (i, s) for i, s in enumerate(spec.steps)}
    found = []
    for col, step in sorted(flow.added_by.items()):
        index, s = steps[step]
        if col in features and s.transform is None and col != spec.data.schema_.target:
            out = next(o for o, spec_out in s.outputs.items() if col in spec_out.adds)
            found.append(
                Problem(
                    "MS227",
                    f"feature '{col}' is added by step '{step}', which declares no transform: requests to the "
                    "model server would lack it",
                    ("steps", index, "outputs", out, "adds", s.outputs[out].adds.index(col)),
                    hint="transform: module:function(frame) -> frame, which the server applies to request rows",
                )
            )
    return found


def problems(spec: sm.Spec) -> list[Problem]:
    flow = resolve(spec)
    return [*flow.problems, *([] if flow.problems else serving_problems(spec, flow))]
