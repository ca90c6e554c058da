"""The KFP components every pipeline is built from.

Every step, builtin or user, is a KFP lightweight Python component whose body runs the runtime step
contract (`python -m mlspec.runtime STEP --ir ... --run-dir ...`) in a subprocess. They are lightweight components
rather than container components because kfp.local's SubprocessRunner (our proof engine) refuses container
components; in a cluster both run the same image, and the runtime image must ship kfp for the executor.

The function bodies below are embedded verbatim into pipeline.yaml by kfp, so each is self-contained, and
this module must not use `from __future__ import annotations` (kfp reads the annotations as objects).
"""

import dataclasses
import functools

from kfp import dsl
from kfp.dsl import python_component


def run_step(
    command: list,
    step: str,
    ir: str,
    run_root: str,
    run_id: str,
    index_arg: str,
    index: int,
    data: dict,
    hparams: dict,
) -> None:
    import subprocess
    import sys

    argv = [sys.executable if command[0] in ("python", "python3") else command[0], *command[1:]]
    argv += ["--ir", ir, "--run-dir", run_root.rstrip("/") + "/" + run_id]
    argv += [index_arg, str(index)] if index >= 0 else []
    for name in sorted(data):
        argv += ["--data", f"{name}={data[name]}"]
    for key in sorted(hparams):
        argv += ["--hparam", f"{key}={hparams[key]}"]
    code = subprocess.run(argv, check=False).returncode
    if code != 0:
        raise RuntimeError(f"mlspec step {step} exited with {code}")


def run_gated_step(
    command: list,
    step: str,
    ir: str,
    run_root: str,
    run_id: str,
    index_arg: str,
    index: int,
    data: dict,
    hparams: dict,
    gates_passed: dsl.OutputPath(bool),
    beats_champion: dsl.OutputPath(bool),
) -> None:
    import subprocess
    import sys

    argv = [sys.executable if command[0] in ("python", "python3") else command[0], *command[1:]]
    argv += ["--ir", ir, "--run-dir", run_root.rstrip("/") + "/" + run_id]
    argv += [index_arg, str(index)] if index >= 0 else []
    for name in sorted(data):
        argv += ["--data", f"{name}={data[name]}"]
    for key in sorted(hparams):
        argv += ["--hparam", f"{key}={hparams[key]}"]
    argv += ["--output", f"gates_passed={gates_passed}", "--output", f"beats_champion={beats_champion}"]
    code = subprocess.run(argv, check=False).returncode
    if code != 0:
        raise RuntimeError(f"mlspec step {step} exited with {code}")


def run_retrain_step(
    command: list,
    step: str,
    ir: str,
    run_root: str,
    run_id: str,
    index_arg: str,
    index: int,
    data: dict,
    hparams: dict,
    retrain: dsl.OutputPath(bool),
) -> None:
    import subprocess
    import sys

    argv = [sys.executable if command[0] in ("python", "python3") else command[0], *command[1:]]
    argv += ["--ir", ir, "--run-dir", run_root.rstrip("/") + "/" + run_id]
    argv += [index_arg, str(index)] if index >= 0 else []
    for name in sorted(data):
        argv += ["--data", f"{name}={data[name]}"]
    for key in sorted(hparams):
        argv += ["--hparam", f"{key}={hparams[key]}"]
    argv += ["--output", f"retrain={retrain}"]
    code = subprocess.run(argv, check=False).returncode
    if code != 0:
        raise RuntimeError(f"mlspec step {step} exited with {code}")


def check_condition(value: bool) -> bool:
    return value


# Step functions by the boolean outputs that IR conditions read from the step.
STEP_FUNCTIONS = {
    (): run_step,
    ("beats_champion", "gates_passed"): run_gated_step,
    ("retrain",): run_retrain_step,
}


@functools.cache
def _python_component(func, image: str) -> python_component.PythonComponent:
    return dsl.component(func, base_image=image, install_kfp_package=False)


def step_component(outputs: tuple[str, ...], image: str, name: str) -> python_component.PythonComponent:
    """The builtin step component for these condition outputs, named after the IR step."""
    return _named(_python_component(STEP_FUNCTIONS[outputs], image), name)


def condition_component(image: str, name: str) -> python_component.PythonComponent:
    return _named(_python_component(check_condition, image), name)


def _named(component: python_component.PythonComponent, name: str) -> python_component.PythonComponent:
    # The component name becomes the task name and the comp-/exec- keys in the YAML: use the IR id.
    spec = dataclasses.replace(component.component_spec, name=name)
    return python_component.PythonComponent(component_spec=spec, python_func=component.python_func)
