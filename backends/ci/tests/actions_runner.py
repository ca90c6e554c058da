"""Runs the jobs of a generated GitHub Actions workflow on this machine, as a GitHub-hosted runner runs them
for a pull_request event, so that tests can show the jobs pass, and fail for the right reasons.

Really run: every `run:` step, in order, with the shell GitHub uses (`bash -e {0}`, or with `shell: bash`
from `defaults`, `bash --noprofile --norc -eo pipefail {0}`), the workflow's, job's and step's `env`, the
file commands `$GITHUB_PATH` and `$GITHUB_ENV`, artifacts between jobs (upload/download-artifact by name and
path, hidden files left out unless `include-hidden-files`), `needs`, `timeout-minutes`; a step that fails ends
the job, and the processes a job leaves behind are stopped when it ends (GitHub's orphan clean-up).

Stood in for (the tools these actions set up are already on this machine):
- actions/checkout: the workspace is a clone of a scratch repository at its pull request merge commit
  (main plus the change under test, refs/pull/1/merge), which is what checkout gives a pull_request job.
- actions/setup-python: a fresh virtualenv of this machine's Python, whose minor version must be the one
  asked for. The third-party packages mlspec depends on are preinstalled in it (this test environment's
  site-packages, linked in), as on a runner with a warm cache; mlspec and its backends are not: the job's
  own `pip install mlspec[...]==X` installs them, from wheels built from the checkout (mlspec is not
  published). pip gets no index and no configuration: a job installs only from those wheels and the
  scanners' wheelhouse, so a requirement nothing here satisfies fails the job.
- hashicorp/setup-terraform: the terraform on PATH, whose minor version must be the one asked for.

Refused, loudly: expressions other than the pull_request values in `pr_context` (no secrets, vars,
functions or operators), `if:` conditions, other actions, and any workflow, job or step key not listed here.
The clock: MLSPEC_NOW (the tests' pinned instant) is set on the machine, so no verdict depends on the day.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
WORKFLOW_KEYS = {"name", "on", "permissions", "defaults", "concurrency", "env", "jobs"}
JOB_KEYS = {"name", "runs-on", "permissions", "timeout-minutes", "needs", "env", "defaults", "steps"}
STEP_KEYS = {"name", "uses", "with", "run", "env"}
SHELLS: dict[str | None, list[str]] = {
    None: ["bash", "-e"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
}
PR_NUMBER = 1
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "mlspec tests",
    "GIT_AUTHOR_EMAIL": "tests@mlspec.invalid",
    "GIT_COMMITTER_NAME": "mlspec tests",
    "GIT_COMMITTER_EMAIL": "tests@mlspec.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class UnsupportedWorkflow(Exception):
    """The workflow uses something this runner does not emulate; it refuses rather than guesses."""


# ------------------------------------------------------------------------------------------------ machine
@dataclass(frozen=True)
class Machine:
    """What the runner image holds: a Python, preinstalled packages, where pip finds wheels, machine env."""

    root: Path
    packages: Path
    find_links: tuple[Path, ...]
    env: Mapping[str, str]


def prepare_machine(
    root: Path, checkout: Path, wheelhouses: tuple[Path, ...], env: Mapping[str, str]
) -> Machine:
    """Wheels of mlspec and its backends built from `checkout`; this environment's packages, mlspec's left out."""
    wheels = root / "wheels"
    build = root / "wheel-build"
    shutil.copytree(checkout, build, ignore=shutil.ignore_patterns(".git", ".venv*", ".mlspec"))
    backends = sorted(p.parent for p in (build / "backends").glob("*/pyproject.toml"))
    projects = [str(build), *map(str, backends)]
    _check(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            *projects,
        ],
        cwd=root,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    packages = root / "packages"
    packages.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in sorted(site.iterdir()):
        if entry.name.startswith(("mlspec", "__editable__", "__pycache__")):
            continue
        (packages / entry.name).symlink_to(entry)
    missing = [str(w) for w in wheelhouses if not w.is_dir()]
    if missing:
        raise FileNotFoundError(f"wheelhouse missing: {', '.join(missing)} (bash scripts/setup.sh makes it)")
    return Machine(root=root, packages=packages, find_links=(wheels, *wheelhouses), env=dict(env))


# ------------------------------------------------------------------------------------------------ repository
@dataclass(frozen=True)
class Repository:
    """A scratch git repository: `main` holds the tracked files, `pr` the change, and the merge commit."""

    path: Path
    merge_sha: str
    head_ref: str = "pr"
    base_ref: str = "main"


def make_repository(
    root: Path, checkout: Path, change: Callable[[Path], None] | None = None, message: str = "no change"
) -> Repository:
    """Copies the files of `checkout` that a commit of its working tree would hold (tracked or new, not
    ignored), then commits `change` on top as the pull request."""
    work = root / "repository"
    work.mkdir(parents=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=checkout,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = checkout / rel
        if source.is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / rel)

    def git(*args: str) -> str:
        env = {**os.environ, **GIT_IDENTITY}
        out = subprocess.run(["git", *args], cwd=work, env=env, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"git {' '.join(args)}: {out.stderr}")
        return out.stdout.strip()

    git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    git("commit", "--quiet", "--message=main")
    git("switch", "--quiet", "--create", "pr")
    if change is not None:
        change(work)
    git("add", "--all")
    git("commit", "--quiet", "--allow-empty", f"--message={message}")
    git("switch", "--quiet", "--detach", "main")
    git("merge", "--quiet", "--no-ff", "--message=Merge pull request #1", "pr")
    sha = git("rev-parse", "HEAD")
    git("update-ref", f"refs/pull/{PR_NUMBER}/merge", sha)
    return Repository(path=work, merge_sha=sha)


# ------------------------------------------------------------------------------------------------ results
@dataclass
class StepResult:
    name: str
    status: str  # passed | failed | stood in
    detail: str = ""
    log: str = ""
    seconds: float = 0.0


@dataclass
class JobResult:
    job: str
    steps: list[StepResult] = field(default_factory=list)
    skipped_because: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.skipped_because and all(s.status != "failed" for s in self.steps)

    @property
    def failed_step(self) -> str | None:
        return next((s.name for s in self.steps if s.status == "failed"), None)

    @property
    def failure_log(self) -> str:
        return next((s.log for s in self.steps if s.status == "failed"), "")

    def report(self) -> str:
        lines = [f"job {self.job}: {'passed' if self.passed else 'failed'} in {self.seconds:.0f}s"]
        if self.skipped_because:
            lines.append(f"  skipped: {self.skipped_because}")
        for step in self.steps:
            detail = f": {step.detail}" if step.detail else ""
            lines.append(f"  [{step.status}] {step.name} ({step.seconds:.0f}s){detail}")
            if step.status == "failed":
                lines += ["    " + line for line in step.log.splitlines()[-60:]]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ expressions
def pr_context(repository: Repository, job: str, workspace: Path, temp: Path) -> dict[str, str]:
    """The values a pull_request event defines, for the ${{ }} expressions this runner resolves."""
    return {
        "github.event_name": "pull_request",
        "github.ref": f"refs/pull/{PR_NUMBER}/merge",
        "github.ref_name": f"{PR_NUMBER}/merge",
        "github.sha": repository.merge_sha,
        "github.base_ref": repository.base_ref,
        "github.head_ref": repository.head_ref,
        "github.repository": "acme/ml",
        "github.workspace": str(workspace),
        "github.job": job,
        "runner.os": "Linux",
        "runner.arch": "X64",
        "runner.temp": str(temp),
    }


def resolve(value: Any, context: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            expression = match.group(1).strip()
            if expression not in context:
                raise UnsupportedWorkflow(
                    f"{where}: ${{{{ {expression} }}}} is not a pull_request value this runner knows "
                    f"({', '.join(sorted(context))}); refusing to guess"
                )
            return context[expression]

        return EXPRESSION.sub(lookup, value)
    if isinstance(value, dict):
        return {k: resolve(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _only(mapping: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(mapping) - allowed)
    if extra:
        raise UnsupportedWorkflow(f"{where}: {', '.join(extra)} not emulated by this runner")


def _shell(defaults: Mapping[str, Any] | None, where: str) -> str | None:
    run = (defaults or {}).get("run", {})
    _only(run, {"shell"}, f"{where}.defaults.run")
    shell = run.get("shell")
    if shell not in SHELLS:
        raise UnsupportedWorkflow(f"{where}: shell {shell!r} not emulated")
    return shell


# ------------------------------------------------------------------------------------------------ the run
class WorkflowRun:
    """One run of a pull_request workflow on one repository; jobs run on demand, each once."""

    def __init__(self, machine: Machine, workflow: Path, repository: Repository, root: Path) -> None:
        self.machine = machine
        self.repository = repository
        self.root = root
        self.doc = yaml.safe_load(workflow.read_text("utf-8"))
        if True in self.doc:  # YAML 1.1 reads an unquoted `on:` key as true
            self.doc["on"] = self.doc.pop(True)
        _only(self.doc, WORKFLOW_KEYS, "workflow")
        trigger = self.doc.get("on", {})
        if not isinstance(trigger, dict):  # `on: push` or `on: [push, pull_request]`
            trigger = dict.fromkeys([trigger] if isinstance(trigger, str) else trigger)
        if "pull_request" not in trigger:
            raise UnsupportedWorkflow("workflow: not triggered by pull_request")
        branches = (trigger["pull_request"] or {}).get("branches", [repository.base_ref])
        if repository.base_ref not in branches:
            raise UnsupportedWorkflow(f"workflow: pull requests into {repository.base_ref} do not run it")
        self.shell = _shell(self.doc.get("defaults"), "workflow")
        self.results: dict[str, JobResult] = {}
        self.artifacts: dict[str, Path] = {}
        self.artifacts_of: dict[str, list[str]] = {}

    def job(self, job_id: str) -> JobResult:
        if job_id not in self.results:
            jobs = self.doc["jobs"]
            if job_id not in jobs:
                raise KeyError(f"no job {job_id!r} in the workflow ({', '.join(jobs)})")
            needs = jobs[job_id].get("needs", [])
            for need in [needs] if isinstance(needs, str) else needs:
                if not self.job(need).passed:
                    self.results[job_id] = JobResult(job_id, skipped_because=f"needs {need}, which failed")
                    break
            else:
                self.results[job_id] = _JobRun(self, job_id).run()
        return self.results[job_id]

    def reuse(self, job_id: str, other: WorkflowRun) -> None:
        """Takes `job_id`'s result and the artifacts it uploaded from another run of this workflow. Only for
        a change that cannot alter that job's output (each use says why)."""
        self.results[job_id] = other.job(job_id)
        for name in other.artifacts_of.get(job_id, []):
            self.artifacts[name] = other.artifacts[name]


class _JobRun:
    def __init__(self, run: WorkflowRun, job_id: str) -> None:
        self.run_ = run
        self.job_id = job_id
        self.spec = run.doc["jobs"][job_id]
        _only(self.spec, JOB_KEYS, f"jobs.{job_id}")
        if not str(self.spec.get("runs-on", "")).startswith("ubuntu-"):
            raise UnsupportedWorkflow(
                f"jobs.{job_id}: runs-on {self.spec.get('runs-on')!r} is not a Linux runner"
            )
        self.dir = run.root / job_id
        self.workspace = self.dir / "workspace"
        self.temp = self.dir / "temp"
        self.steps_dir = self.dir / "steps"  # scripts, logs and file-command files, outside RUNNER_TEMP
        for folder in (self.workspace, self.temp, self.dir / "home", self.steps_dir):
            folder.mkdir(parents=True)
        self.context = pr_context(run.repository, job_id, self.workspace, self.temp)
        self.shell = _shell(self.spec.get("defaults"), f"jobs.{job_id}") or run.shell
        self.env = {
            "PATH": SYSTEM_PATH,
            "HOME": str(self.dir / "home"),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKFLOW": str(run.doc.get("name", "")),
            "GITHUB_JOB": job_id,
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_REF": self.context["github.ref"],
            "GITHUB_REF_NAME": self.context["github.ref_name"],
            "GITHUB_SHA": run.repository.merge_sha,
            "GITHUB_BASE_REF": run.repository.base_ref,
            "GITHUB_HEAD_REF": run.repository.head_ref,
            "GITHUB_REPOSITORY": self.context["github.repository"],
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_TEMP": str(self.temp),
            # the machine's package sources: wheels only, no index, no pip configuration of this host
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": " ".join(str(p) for p in run.machine.find_links),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **run.machine.env,
        }
        self.env.update(resolve(run.doc.get("env", {}), self.context, "env"))
        self.env.update(resolve(self.spec.get("env", {}), self.context, f"jobs.{job_id}.env"))
        self.path: list[str] = []  # $GITHUB_PATH entries, newest first
        self.groups: list[int] = []
        self.deadline = time.monotonic() + 60 * float(self.spec.get("timeout-minutes", 360))

    def run(self) -> JobResult:
        result = JobResult(self.job_id)
        started = time.monotonic()
        try:
            for index, step in enumerate(self.spec["steps"]):
                where = f"jobs.{self.job_id}.steps[{index}]"
                _only(step, STEP_KEYS, where)
                if ("uses" in step) == ("run" in step):
                    raise UnsupportedWorkflow(f"{where}: needs exactly one of uses and run")
                name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
                began = time.monotonic()
                if "uses" in step:
                    outcome = self.action(step, resolve(step.get("with", {}), self.context, f"{where}.with"))
                else:
                    outcome = self.script(index, step, where)
                outcome.name = name
                outcome.seconds = time.monotonic() - began
                result.steps.append(outcome)
                if outcome.status == "failed":
                    break
        finally:
            self.stop_leftovers()
            result.seconds = time.monotonic() - started
        return result

    # ------------------------------------------------------------------------------------- run steps
    def script(self, index: int, step: Mapping[str, Any], where: str) -> StepResult:
        script = self.steps_dir / f"{index}.sh"
        script.write_text(resolve(step["run"], self.context, f"{where}.run"), "utf-8")
        files = {kind: self.steps_dir / f"{index}.{kind}" for kind in ("path", "env", "output", "summary")}
        for file in files.values():
            file.touch()
        env = {
            **self.env,
            **resolve(step.get("env", {}), self.context, f"{where}.env"),
            "GITHUB_PATH": str(files["path"]),
            "GITHUB_ENV": str(files["env"]),
            "GITHUB_OUTPUT": str(files["output"]),
            "GITHUB_STEP_SUMMARY": str(files["summary"]),
        }
        env["PATH"] = ":".join([*self.path, env["PATH"]])
        log_path = self.steps_dir / f"{index}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [*SHELLS[self.shell], str(script)],
                cwd=self.workspace,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.groups.append(proc.pid)
            try:
                code = proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stop_leftovers()
                proc.wait()
                return StepResult("", "failed", "the job's timeout-minutes ran out", _read(log_path))
        text = _read(log_path)
        if code != 0:
            return StepResult("", "failed", f"exit code {code}", text)
        self.apply_file_commands(files["path"], files["env"])
        return StepResult("", "passed", "", text)

    def apply_file_commands(self, path_file: Path, env_file: Path) -> None:
        for line in reversed(path_file.read_text("utf-8").splitlines()):
            if line.strip():
                self.path.insert(0, line.strip())
        lines = iter(env_file.read_text("utf-8").splitlines())
        for line in lines:
            if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
                name, delimiter = line.split("<<", 1)
                block = []
                for more in lines:
                    if more == delimiter:
                        break
                    block.append(more)
                self.env[name] = "\n".join(block)
            elif "=" in line:
                name, value = line.split("=", 1)
                self.env[name] = value

    def stop_leftovers(self) -> None:
        """Stops every process the job's steps left running (each step ran in a process group of its own)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = []
            for group in self.groups:
                try:
                    os.killpg(group, sig)
                    alive.append(group)
                except ProcessLookupError:
                    pass
            if not alive:
                break
            deadline = time.monotonic() + 10
            while alive and time.monotonic() < deadline:
                alive = [g for g in alive if _group_alive(g)]
                time.sleep(0.1)
            self.groups = alive

    # ------------------------------------------------------------------------------------- actions
    def action(self, step: Mapping[str, Any], with_: dict[str, Any]) -> StepResult:
        uses = step["uses"]
        repo = uses.split("@", 1)[0]
        handlers = {
            "actions/checkout": self.checkout,
            "actions/setup-python": self.setup_python,
            "hashicorp/setup-terraform": self.setup_terraform,
            "actions/upload-artifact": self.upload_artifact,
            "actions/download-artifact": self.download_artifact,
        }
        if repo not in handlers:
            raise UnsupportedWorkflow(f"jobs.{self.job_id}: action {uses} is not emulated by this runner")
        return handlers[repo](with_)

    def checkout(self, with_: dict[str, Any]) -> StepResult:
        _only(with_, {"persist-credentials"}, f"jobs.{self.job_id}: actions/checkout with")
        repository = self.run_.repository
        _check(["git", "clone", "--quiet", "--no-checkout", str(repository.path), str(self.workspace)])
        _check(["git", "checkout", "--quiet", "--detach", repository.merge_sha], cwd=self.workspace)
        return StepResult("", "stood in", f"git clone at the merge commit {repository.merge_sha[:12]}")

    def setup_python(self, with_: dict[str, Any]) -> StepResult:
        _only(with_, {"python-version"}, f"jobs.{self.job_id}: actions/setup-python with")
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        if str(with_.get("python-version")) != here:
            raise UnsupportedWorkflow(
                f"setup-python asks for {with_.get('python-version')}; this machine has {here}"
            )
        venv = self.dir / "python"
        _check([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        site = Path(
            subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-c",
                    "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        (site / "runner-packages.pth").write_text(
            f"import site; site.addsitedir({str(self.run_.machine.packages)!r})\n", "utf-8"
        )
        _write_console_scripts(self.run_.machine.packages, venv / "bin")
        self.path.insert(0, str(venv / "bin"))
        return StepResult(
            "", "stood in", f"a fresh virtualenv of Python {here} with the preinstalled packages"
        )

    def setup_terraform(self, with_: dict[str, Any]) -> StepResult:
        _only(with_, {"terraform_version", "terraform_wrapper"}, f"jobs.{self.job_id}: setup-terraform with")
        wanted = str(with_.get("terraform_version", ""))
        found = subprocess.run(["terraform", "version", "-json"], capture_output=True, text=True, check=True)
        version = yaml.safe_load(found.stdout)["terraform_version"]
        if version.split(".")[:2] != wanted.split(".")[:2]:
            raise UnsupportedWorkflow(f"setup-terraform asks for {wanted}; this machine has {version}")
        return StepResult("", "stood in", f"terraform {version} on PATH")

    def upload_artifact(self, with_: dict[str, Any]) -> StepResult:
        where = f"jobs.{self.job_id}: actions/upload-artifact with"
        _only(with_, {"name", "path", "include-hidden-files", "retention-days", "if-no-files-found"}, where)
        name, rel = str(with_["name"]), str(with_["path"])
        if (
            "\n" in rel.strip()
            or any(c in rel for c in "*?[!")
            or Path(rel).is_absolute()
            or ".." in Path(rel).parts
        ):
            raise UnsupportedWorkflow(f"{where}: path {rel!r}: only one relative path is emulated")
        if name in self.run_.artifacts:
            return StepResult("", "failed", f"an artifact named {name} exists already")
        source = self.workspace / rel
        hidden_ok = bool(with_.get("include-hidden-files", False))
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        files = [
            f
            for f in files
            if hidden_ok or not any(part.startswith(".") for part in f.relative_to(self.workspace).parts)
        ]
        if not files:
            mode = with_.get("if-no-files-found", "warn")
            status = "failed" if mode == "error" else "passed"
            return StepResult("", status, f"no files found at {rel} (if-no-files-found: {mode})")
        store = self.run_.root / "artifacts" / name
        for file in files:
            target = store / (file.name if source.is_file() else file.relative_to(source))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
        self.run_.artifacts[name] = store
        self.run_.artifacts_of.setdefault(self.job_id, []).append(name)
        return StepResult("", "passed", f"{len(files)} file(s) as artifact {name}")

    def download_artifact(self, with_: dict[str, Any]) -> StepResult:
        _only(with_, {"name", "path"}, f"jobs.{self.job_id}: actions/download-artifact with")
        name = str(with_["name"])
        if name not in self.run_.artifacts:
            return StepResult("", "failed", f"Artifact not found: {name}")
        target = self.workspace / str(with_.get("path", "."))
        shutil.copytree(self.run_.artifacts[name], target, dirs_exist_ok=True)
        return StepResult("", "passed", f"artifact {name} into {with_.get('path', '.')}")


# ------------------------------------------------------------------------------------------------ helpers
def _check(argv: list[str], cwd: Path | None = None, env: Mapping[str, str] | None = None) -> None:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{out.stdout}{out.stderr}")


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


def _write_console_scripts(packages: Path, bin_dir: Path) -> None:
    """The commands of the preinstalled distributions, as pip would have written them into this environment."""
    python = bin_dir / "python"
    for dist in importlib.metadata.distributions(path=[str(packages)]):
        for entry in dist.entry_points.select(group="console_scripts"):
            target = bin_dir / entry.name
            if target.exists():
                continue
            head = entry.attr.split(".", 1)[0]
            target.write_text(
                f"#!{python}\nimport sys\nfrom {entry.module} import {head}\n"
                f"if __name__ == '__main__':\n    sys.exit({entry.attr}())\n",
                "utf-8",
            )
            target.chmod(0o755)
