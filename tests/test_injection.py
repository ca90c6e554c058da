"""Spec strings are data in every backend.

Every string field the spec models have (found by walking the models, not from a hand list) gets each
payload in turn: Terraform and cdktf interpolation, YAML line breaks and U+2028, Jinja and KFP
placeholders, shell metacharacters, Python quoting. Lint either refuses the spec with a code, or every
target compiles and the payload is inert: an escaped literal in Terraform JSON, a plain string value in the
KFP and Kubernetes YAML, a string constant in the Airflow DAG. The engine test then hands the accepted
payloads to terraform validate, kfp's loader, Airflow's DagBag and kubernetes-validate.
"""

from __future__ import annotations

import ast
import copy
import functools
import io
import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from ruamel.yaml import YAML

import mlspec
from mlspec.diagnostics import MlspecError, has_errors
from mlspec.spec.models import Spec

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["kubeflow", "airflow", "terraform", "kubernetes"]
PAYLOADS = {
    "terraform": '${file("/etc/hostname")}',
    "terraform-directive": "%{ if true }x%{ endif }",
    "cdktf-token": "${TfToken[TOKEN.1]}",
    "yaml-newline": "x\ndefaultPipelineRoot: s3://attacker-bucket",
    "yaml-u2028": "x\u2028defaultPipelineRoot: s3://attacker-bucket",
    "vertical-tab": "x\x0by",
    "jinja": "{{ dag_run.conf }}",
    "kfp-placeholder": "{{$}}",
    "jinja-statement": "{% for x in range(9) %}x{% endfor %}",
    "k8s-variable": "$(HOME)",
    "shell": "; rm -rf / #",
    "python-quote": "'\"); import os; os.system('id'); (\"",
    "backslash": "x\\",
}


def _churn() -> dict:
    return YAML(typ="safe", pure=True).load((ROOT / "specs" / "churn.yaml").read_text())


def _is_str(annotation: Any) -> bool:
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_str(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_str(a) for a in typing.get_args(annotation) if a is not type(None))
    return False


def _model_of(annotation: Any, value: Any) -> type[BaseModel] | None:
    """The model class `value` validates as: the annotation's model, or the union member whose fields fit."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_of(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType) and isinstance(value, dict):
        for arg in typing.get_args(annotation):
            model = _model_of(arg, value)
            names = {f.alias or n for n, f in (model.model_fields.items() if model else [])}
            if model is not None and set(value) <= names:
                tags = [
                    n
                    for n, f in model.model_fields.items()
                    if typing.get_origin(f.annotation) is typing.Literal
                ]
                if all(value.get(t) in typing.get_args(model.model_fields[t].annotation) for t in tags):
                    return model
    return None


def string_fields(model: type[BaseModel], data: dict, path: tuple = ()) -> Iterator[tuple]:
    """Spec key paths of every str-typed field reachable in `data` (present or not), by walking the models."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        value = data.get(key)
        if _is_str(annotation):
            yield (*path, key)
            continue
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        inner = (
            [a for a in args if a is not type(None)]
            if origin in (typing.Union, types.UnionType)
            else [annotation]
        )
        for candidate in inner:
            c_origin, c_args = typing.get_origin(candidate), typing.get_args(candidate)
            if c_origin is dict and isinstance(value, dict | type(None)):
                if c_args and _is_str(c_args[1]):
                    yield (*path, key, "injected")
                elif c_args and value:
                    for k, v in value.items():
                        sub = _model_of(c_args[1], v)
                        if sub is not None and isinstance(v, dict):
                            yield from string_fields(sub, v, (*path, key, k))
            elif c_origin is list and isinstance(value, list):
                for i, item in enumerate(value):
                    if c_args and _is_str(c_args[0]):
                        yield (*path, key, i)
                    elif c_args and isinstance(item, dict):
                        sub = _model_of(c_args[0], item)
                        if sub is not None:
                            yield from string_fields(sub, item, (*path, key, i))
            else:
                sub = _model_of(candidate, value)
                if sub is not None and isinstance(value, dict):
                    yield from string_fields(sub, value, (*path, key))


FIELDS = sorted(set(string_fields(Spec, _churn())), key=str)


def _with(data: dict, path: tuple, value: str) -> dict:
    data = copy.deepcopy(data)
    parent = data
    for part in path[:-1]:
        parent = parent.setdefault(part, {}) if isinstance(parent, dict) else parent[part]
    parent[path[-1]] = value
    return data


def _text(data: dict) -> str:
    buf = io.StringIO()
    YAML().dump(data, buf)
    return buf.getvalue()


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _raw_syntax(payload: str) -> list[re.Pattern[str]]:
    """Patterns that match the payload's `${`/`%{` openings when they are not escaped (`$${`, `%%{`)."""
    found = []
    for match in re.finditer(r"[$%]\{", payload):
        opening, rest = match.group(0), payload[match.end() : match.end() + 6]
        found.append(re.compile(rf"(?<!{re.escape(opening[0])}){re.escape(opening)}{re.escape(rest)}"))
    return found


def assert_inert(payload: str, files: dict[str, dict[str, str]]) -> None:
    """The payload is data in every artifact."""
    # Terraform evaluates ${...} and %{...} in every JSON string: each must be escaped
    raw = _raw_syntax(payload)
    for text in files.get("terraform", {}).values():
        if text.lstrip().startswith("{"):
            for s in _strings(json.loads(text)):
                assert not any(r.search(s) for r in raw), f"unescaped payload in Terraform JSON: {s!r}"
    # KFP and Kubernetes YAML load, and whatever carries the payload holds it as a string value
    for target in ("kubeflow", "kubernetes"):
        for name, text in files.get(target, {}).items():
            if name.endswith((".yaml", ".yml")):
                docs = [d for d in yaml.safe_load_all(text) if d is not None]
                keys = [k for d in docs for k in _keys(d)]
                assert payload not in keys, f"{target}/{name}: the payload became a key"
                roots = [d.get("defaultPipelineRoot") for d in docs if isinstance(d, dict)]
                assert not any("attacker" in str(r) for r in roots), (
                    f"{target}/{name}: the payload became YAML"
                )
    # Airflow: the DAG parses, and the payload is a string constant, wrapped in literal() when Jinja would
    # otherwise render it
    for name, text in files.get("airflow", {}).items():
        if not name.endswith(".py") or (payload not in text and repr(payload)[1:-1] not in text):
            continue
        tree = ast.parse(text)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        constants = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == payload]
        assert constants, f"airflow/{name}: the payload is not one string constant"
        if "{{" in payload or "{%" in payload:
            for node in constants:
                parent = parents.get(node)
                in_literal = isinstance(parent, ast.Call) and getattr(parent.func, "id", "") == "literal"
                # Airflow renders no Jinja in a DAG's doc_md (text, not a template unless it names a .md
                # file, which the backend prevents) nor in default_args' owner
                untemplated = isinstance(parent, ast.Dict) or (
                    isinstance(parent, ast.keyword) and parent.arg in ("doc_md", "description")
                )
                assert in_literal or untemplated, f"airflow/{name}: Jinja would render {payload!r}"


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _keys(v)
    elif isinstance(node, list):
        for v in node:
            yield from _keys(v)


def _compile(text: str) -> dict[str, dict[str, str]]:
    result = mlspec.compile(mlspec.loads(text, "specs/churn.yaml"), TARGETS)
    return {t: {a.path: a.data().decode() for a in arts} for t, arts in result.artifacts.items()}


def test_the_walk_finds_every_string_field_of_the_example() -> None:
    paths = {tuple(p) for p in FIELDS}
    for expected in [
        ("metadata", "owner"),
        ("metadata", "description"),
        ("metadata", "labels", "injected"),
        ("images", "runtime"),
        ("data", "sources", "train", "uri"),
        ("registry", "mlflow", "tracking_uri"),
        ("infrastructure", "region"),
        ("infrastructure", "node_pools", "gpu", "instance_type"),
        ("infrastructure", "state", "bucket"),
        ("retraining", "triggers", 0, "cron"),
    ]:
        assert expected in paths, expected
    assert len(paths) > 40


@functools.cache
def _accepting(payload: str) -> tuple[dict, list[tuple]]:
    """The example with the payload in every string field where lint accepts it alone, and those fields.

    Every other field refuses it with a located diagnostic code (a load, validation or lint error)."""
    base = _churn()
    accepted = []
    for path in FIELDS:
        try:
            diagnostics = mlspec.lint(mlspec.loads(_text(_with(base, path, payload)), "specs/churn.yaml"))
        except MlspecError as exc:
            diagnostics = exc.diagnostics
        if has_errors(diagnostics):
            assert all(
                d.code.startswith("MS") and d.location.line >= 1 for d in diagnostics if d.code != "MS009"
            )
        else:
            accepted.append(path)
    data = base
    for path in accepted:
        data = _with(data, path, payload)
    return data, accepted


@pytest.mark.slow
@pytest.mark.parametrize("payload_name", PAYLOADS)
def test_each_payload_is_refused_or_compiles_inert_in_every_target(payload_name: str) -> None:
    payload = PAYLOADS[payload_name]
    data, accepted = _accepting(payload)
    if payload_name in ("yaml-newline", "yaml-u2028", "vertical-tab"):
        assert accepted in ([], [("metadata", "description")]), accepted  # the one multi-line field
    text = _text(data)
    assert not has_errors(mlspec.lint(mlspec.loads(text, "specs/churn.yaml")))
    assert_inert(payload, _compile(text))  # lint clean: every target compiles, and the payload is data


@pytest.mark.engine
@pytest.mark.slow
def test_accepted_payloads_pass_the_engines(tmp_path: Path, tf_cli_config: Path) -> None:
    """Two specs carrying every payload, each in fields lint accepts it in, through the real engines."""
    import subprocess
    import sys

    names = list(PAYLOADS)
    accepted = {name: set(_accepting(PAYLOADS[name])[1]) for name in names}
    for offset, name in ((0, "mix-a"), (len(names) // 2, "mix-b")):
        data = _churn()
        for i, path in enumerate(FIELDS):  # field i takes the next payload (in rotation) lint accepts there
            for k in range(len(names)):
                payload_name = names[(i + offset + k) % len(names)]
                if path in accepted[payload_name]:
                    data = _with(data, path, PAYLOADS[payload_name])
                    break
        assert not has_errors(mlspec.lint(mlspec.loads(_text(data), "specs/churn.yaml")))
        files = _compile(_text(data))
        out = tmp_path / name
        for target, artifacts in files.items():
            for rel, text in artifacts.items():
                (out / target / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / target / rel).write_text(text)
        # kfp's own loader reads the pipeline back
        from kfp.components import load_component_from_file

        load_component_from_file(str(out / "kubeflow" / "pipeline.yaml"))
        # kubernetes-validate --strict on every manifest
        manifests = [str(p) for p in (out / "kubernetes").glob("*.yaml") if p.name != "kustomization.yaml"]
        check = subprocess.run(
            [
                str(Path(sys.executable).parent / "kubernetes-validate"),
                "--strict",
                "-k",
                "1.31.0",
                "--quiet",
                *manifests,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert "error" not in check.stdout.lower() or "is not a known" in check.stdout, check.stdout[-2000:]
        # terraform validate with the real AWS provider
        env = {**__import__("os").environ, "TF_CLI_CONFIG_FILE": str(tf_cli_config)}
        tf_dir = out / "terraform"
        main = json.loads((tf_dir / "main.tf.json").read_text())
        main["terraform"].pop("backend", None)  # validate offline, without the S3 state bucket
        (tf_dir / "main.tf.json").write_text(json.dumps(main))
        for cmd in (["init", "-backend=false", "-input=false"], ["validate", "-no-color"]):
            run = subprocess.run(
                ["terraform", *cmd],
                cwd=tf_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert run.returncode == 0, (
                f"{name}: terraform {cmd[0]}: {run.stdout[-2000:]}{run.stderr[-2000:]}"
            )
        # Airflow's parser imports the DAG files with zero errors
        probe = (
            "import sys\nfrom airflow.dag_processing.dagbag import DagBag\n"
            "bag = DagBag(dag_folder=sys.argv[1])\n"
            "print(len(bag.dags), len(bag.import_errors)); print(bag.import_errors)"
        )
        run = subprocess.run(
            [sys.executable, "-c", probe, str(out / "airflow")],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        counts = run.stdout.strip().splitlines()[-2].split() if run.returncode == 0 else []
        assert counts == ["2", "0"], f"{name}: {run.stdout[-2000:]}{run.stderr[-2000:]}"
