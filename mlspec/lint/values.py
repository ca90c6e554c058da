"""The validation layer at the IR boundary: every string and number a target will carry is legal for it.

Spec strings end up in Kubernetes objects, KFP YAML (some of it in comments), Airflow DAG source, Terraform
JSON and shell-free argv lists. Each rule here refuses, at the spec line, a value some target would
mistake for syntax or reject: control and line-separator characters, label keys and values, environment
variable names, names that collide once normalized for a target, numbers that are not finite or not
representable, engine placeholders in commands, malformed image references.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from mlspec.diagnostics import Diagnostic
from mlspec.lint.engine import LintContext, rule
from mlspec.units import dns_label, identifier, is_quantity, quantity_value

KeyPath = tuple[str | int, ...]
# Only the description may span lines (no target writes it where a line break is syntax).
MULTILINE_OK: frozenset[KeyPath] = frozenset({("metadata", "description")})
# Line separators YAML 1.1 readers break lines on, besides \n and \r.
LINE_SEPARATORS = {"\u0085", "\u2028", "\u2029"}


def _walk(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any, bool]]:
    """(path, value, is_key) for every scalar and mapping key of the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), key, True
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))
    else:
        yield path, node, False


def _bad_character(text: str, multiline: bool) -> str | None:
    for char in text:
        if char == "\n" and multiline:
            continue
        if char in "\n\r":
            return "a line break"
        if char in LINE_SEPARATORS:
            return f"the line separator U+{ord(char):04X}"
        category = unicodedata.category(char)
        if category == "Cc" and char != "\t":
            return f"the control character U+{ord(char):04X}"
        if category in ("Cf", "Co", "Cs"):  # format (bidi overrides, zero-width), private use, surrogates
            return f"the invisible or private-use character U+{ord(char):04X}"
    return None


@rule("MS240", "invisible, control or line-separator character in a string")
def no_control_characters(ctx: LintContext) -> Iterator[Diagnostic]:
    for path, value, is_key in _walk(ctx.data):
        if not isinstance(value, str):
            continue
        problem = _bad_character(value, multiline=path in MULTILINE_OK and not is_key)
        if problem:
            yield ctx.diag(
                "MS240",
                f"{'key' if is_key else 'value'} contains {problem}",
                path,
                hint="generated YAML comments, DAG source and Terraform strings would carry it raw; remove it",
                at_key=is_key,
            )


# ------------------------------------------------------------------------------------------------ Kubernetes labels
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"prefix {prefix!r} is not a DNS subdomain"
    if not _LABEL_NAME.fullmatch(name):
        return "the name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"
    if prefix == "mlspec.io" or prefix.endswith(".mlspec.io"):
        return "the mlspec.io/ prefix is mlspec's own (node pools, variants, steps)"
    return None


def label_value_problem(value: str) -> str | None:
    if value and not _LABEL_NAME.fullmatch(value):
        return (
            "a label value is at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"
        )
    return None


@rule("MS241", "invalid Kubernetes label or taint")
def kubernetes_labels(ctx: LintContext) -> Iterator[Diagnostic]:
    places: list[tuple[KeyPath, dict[str, str]]] = [(("metadata", "labels"), ctx.spec.metadata.labels)]
    if ctx.spec.infrastructure:
        for name, pool in ctx.spec.infrastructure.node_pools.items():
            places.append((("infrastructure", "node_pools", name, "labels"), pool.labels))
            for i, taint in enumerate(pool.taints or []):
                taint_path: KeyPath = ("infrastructure", "node_pools", name, "taints", i)
                if problem := label_key_problem(taint.key):
                    yield ctx.diag("MS241", f"taint key {taint.key!r}: {problem}", (*taint_path, "key"))
                if problem := label_value_problem(taint.value):
                    yield ctx.diag("MS241", f"taint value {taint.value!r}: {problem}", (*taint_path, "value"))
    for path, labels in places:
        for key, value in labels.items():
            if problem := label_key_problem(key):
                yield ctx.diag("MS241", f"label key {key!r}: {problem}", (*path, key), at_key=True)
            if problem := label_value_problem(value):
                yield ctx.diag("MS241", f"label {key}={value!r}: {problem}", (*path, key))


# ------------------------------------------------------------------------------------------------ names
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


@rule("MS242", "name not legal for every target")
def legal_names(ctx: LintContext) -> Iterator[Diagnostic]:
    for i, step in enumerate(ctx.spec.steps):
        for key in step.env:
            if not _ENV_NAME.fullmatch(key):
                yield ctx.diag(
                    "MS242",
                    f"environment variable name {key!r} is not a C identifier",
                    ("steps", i, "env", key),
                    hint="letters, digits and '_', not starting with a digit (Kubernetes and Airflow refuse others)",
                    at_key=True,
                )
    for key in ctx.spec.training.hyperparameters:
        if not _IDENTIFIER.fullmatch(key):
            yield ctx.diag(
                "MS242",
                f"hyperparameter name {key!r} is not an identifier",
                ("training", "hyperparameters", key),
                hint="it becomes a KFP pipeline parameter and a Python keyword; use letters, digits and '_'",
                at_key=True,
            )
    for name in ctx.spec.data.sources:
        if not _SOURCE_NAME.fullmatch(name):
            yield ctx.diag(
                "MS242",
                f"data source name {name!r} must be lowercase letters, digits and '_', starting with a letter",
                ("data", "sources", name),
                hint="it becomes a pipeline parameter name",
                at_key=True,
            )


def _collisions(names: Sequence[tuple[KeyPath, str]], normalize: Any) -> Iterator[tuple[KeyPath, str, str]]:
    seen: dict[str, str] = {}
    for path, name in names:
        form = normalize(name)
        if form in seen and seen[form] != name:
            yield path, name, seen[form]
        seen.setdefault(form, name)


@rule("MS243", "two names become one on some target")
def distinct_names(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.ir.catalog import BUILTIN_STEP_IDS

    steps: list[tuple[KeyPath, str]] = [((), b) for b in BUILTIN_STEP_IDS]
    steps += [(("steps", i, "name"), s.name) for i, s in enumerate(ctx.spec.steps)]
    for path, name, other in _collisions(steps, identifier):
        yield ctx.diag(
            "MS243",
            f"step '{name}' and step '{other}' are both '{identifier(name)}' as Airflow task ids",
            path,
            hint="rename one of them",
        )
    if ctx.spec.infrastructure:
        pools = [(("infrastructure", "node_pools", n), n) for n in ctx.spec.infrastructure.node_pools]
        for normalize, target in ((dns_label, "Kubernetes label values"), (identifier, "Terraform names")):
            for path, name, other in _collisions(pools, normalize):
                yield ctx.diag(
                    "MS243",
                    f"node pools '{name}' and '{other}' are both '{normalize(name)}' as {target}",
                    path,
                    at_key=True,
                )
    hparams = [(("training", "hyperparameters", k), k) for k in ctx.spec.training.hyperparameters]
    for path, name, other in _collisions(hparams, str.lower):
        yield ctx.diag(
            "MS243", f"hyperparameters '{name}' and '{other}' differ only in case", path, at_key=True
        )


# ------------------------------------------------------------------------------------------------ numbers
# JSON consumers (KFP, Airflow's REST API, the IR in JavaScript-based editors) read numbers as doubles.
MAX_EXACT_INT = 2**53
MAX_CPU_CORES = 1024
MAX_MEMORY_BYTES = 64 * 2**40  # 64 TiB
MAX_TRIALS = 10_000
MAX_PARALLELISM = 1_000
MAX_DURATION_SECONDS = 10 * 366 * 86400


@rule("MS244", "number not finite or out of range")
def bounded_numbers(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.units import duration_seconds

    for path, value, _ in _walk(ctx.data):
        if isinstance(value, float) and not math.isfinite(value):
            yield ctx.diag("MS244", f"{value} is not a finite number", path)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INT:
            yield ctx.diag("MS244", f"{value} is beyond 2^53 and would lose precision as JSON", path)
    blocks: list[tuple[KeyPath, Any]] = [(("training", "resources"), ctx.spec.training.resources)]
    blocks += [(("steps", i, "resources"), s.resources) for i, s in enumerate(ctx.spec.steps)]
    if ctx.spec.serving:
        blocks.append((("serving", "resources"), ctx.spec.serving.resources))
    for path, res in blocks:
        for field, limit, unit in (("cpu", MAX_CPU_CORES, "cores"), ("memory", MAX_MEMORY_BYTES, "bytes")):
            value = getattr(res, field)
            if (
                value is None
                or not is_quantity(value)
                or (isinstance(value, float) and not math.isfinite(value))
            ):
                continue
            try:
                amount = quantity_value(value)
            except (ValueError, ArithmeticError):
                amount = None
            if amount is None or amount > limit or amount.is_infinite():
                yield ctx.diag(
                    "MS244",
                    f"{field} {value!r} is more than any node offers ({limit} {unit})",
                    (*path, field),
                )
    t = ctx.spec.training.tuning
    if t is not None:
        if t.trials > MAX_TRIALS:
            yield ctx.diag(
                "MS244", f"{t.trials} tuning trials; at most {MAX_TRIALS}", ("training", "tuning", "trials")
            )
        if t.parallelism > min(MAX_PARALLELISM, t.trials):
            yield ctx.diag(
                "MS244",
                f"parallelism {t.parallelism} is more than the {t.trials} trials"
                if t.parallelism > t.trials
                else f"parallelism {t.parallelism}; at most {MAX_PARALLELISM}",
                ("training", "tuning", "parallelism"),
            )
    for path, value, _ in _walk(ctx.data):
        if isinstance(value, str) and path and _is_duration_key(path):
            try:
                seconds = duration_seconds(value)
            except ValueError:
                continue
            if seconds > MAX_DURATION_SECONDS:
                yield ctx.diag("MS244", f"duration {value!r} is more than ten years", path)


_DURATION_KEYS = {
    "timeout",
    "step_duration",
    "experiment_duration",
    "window",
    "cooldown",
    "label_delay",
    "ttl",
    "max_age",
}


def _is_duration_key(path: KeyPath) -> bool:
    return isinstance(path[-1], str) and path[-1] in _DURATION_KEYS


# ------------------------------------------------------------------------------------------------ commands
_PLACEHOLDER = re.compile(r"\{(outputs|inputs)\.([A-Za-z_][A-Za-z0-9_-]*)\}|\{run_dir\}")
_ENGINE_SYNTAX = (
    ("{{", "a Jinja/KFP placeholder ({{ ... }}), which Airflow and KFP would expand"),
    ("{%", "a Jinja statement ({% ... %}), which Airflow would run"),
    ("$(", "a Kubernetes variable reference ($(VAR)), which the kubelet would expand"),
)


def command_problem(arg: str) -> str | None:
    for token, what in _ENGINE_SYNTAX:
        if token in arg:
            return f"contains {what}"
    rest = _PLACEHOLDER.sub("", arg)
    if re.search(r"\{(outputs|inputs)\.|\{run_dir(?!\})", rest):
        return "has an unclosed or malformed {outputs.NAME}, {inputs.NAME} or {run_dir} placeholder"
    return None


@rule("MS245", "engine syntax or a broken placeholder in a command")
def safe_commands(ctx: LintContext) -> Iterator[Diagnostic]:
    for i, step in enumerate(ctx.spec.steps):
        for j, arg in enumerate(step.command or []):
            if problem := command_problem(arg):
                yield ctx.diag(
                    "MS245",
                    f"command argument {arg!r} {problem}",
                    ("steps", i, "command", j),
                    hint="mlspec expands only {outputs.NAME}, {inputs.NAME} and {run_dir}, the same on every "
                    "target; pass other values through env",
                )


# ------------------------------------------------------------------------------------------------ images
# distribution/reference's grammar: [host[:port]/]path[:tag][@algorithm:hex]
_IMAGE = re.compile(
    r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


@rule("MS246", "malformed image reference")
def image_references(ctx: LintContext) -> Iterator[Diagnostic]:
    images: list[tuple[KeyPath, str]] = [(("images", "runtime"), ctx.spec.images.runtime)]
    images += [(("steps", i, "image"), s.image) for i, s in enumerate(ctx.spec.steps) if s.image]
    for path, image in images:
        if len(image) > 255 or not _IMAGE.fullmatch(image):
            yield ctx.diag(
                "MS246",
                f"{image!r} is not an image reference",
                path,
                hint="registry/repository:tag or registry/repository@sha256:digest, lowercase repository",
            )
