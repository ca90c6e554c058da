"""The writer killed at every step: whatever the moment, the output is the old or the new one, and --check agrees.

A forked child runs writer.write with a hook that signals the child itself just before or just after a
chosen rename or staged file write (SIGKILL, which nothing can catch, and SIGTERM, which the writer holds);
other children are SIGKILLed at seeded random moments of a slowed write. Then --check (writer.check, as the
CLI runs it) must flag any leftover, and recovery must leave exactly the old or the new output. The last test
does the same to the real `mlspec compile` process.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_core import MINIMAL

from mlspec import writer
from mlspec.backends import Artifact

TARGETS = ["ir", "echo"]
SHA = "0" * 64


def output(version: str) -> dict[str, bytes]:
    """Two targets with several files each; every file changes between versions, so mixes show."""
    return writer.render(
        {
            "ir": [Artifact("ir.json", f'{{"version": "{version}"}}\n')],
            "echo": [Artifact(f"part-{i}.txt", f"{version} {i}\n") for i in range(3)]
            + [Artifact("sub/deep.yaml", f"version: {version}\n")],
        },
        "spec.yaml",
    )


OLD, NEW = output("old"), output("new")


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    out = tmp_path_factory.mktemp("states")
    writer.write(out / "sys", OLD, TARGETS, "spec.yaml", SHA, out=out)
    old = snapshot(out / "sys")
    writer.write(out / "sys", NEW, TARGETS, "spec.yaml", SHA, out=out)
    return {"old": old, "new": snapshot(out / "sys")}


def fresh(tmp_path: Path) -> Path:
    """An output folder holding the old output, written by the writer."""
    writer.write(tmp_path / "sys", OLD, TARGETS, "spec.yaml", SHA, out=tmp_path)
    return tmp_path / "sys"


def in_child(body: Callable[[], None]) -> int:
    """Run body in a forked child; the signal that ended it, or 0 for a normal exit."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            body()
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


def signal_at(root: Path, step: str, index: int, when: str, sig: int) -> Callable[[], None]:
    """A write of NEW that sends itself `sig` before or after its index-th call of writer.<step>."""

    def body() -> None:
        real = getattr(writer, step)
        calls = [0]

        def hooked(*args):
            calls[0] += 1
            if calls[0] == index and when == "before":
                os.kill(os.getpid(), sig)
            real(*args)
            if calls[0] == index and when == "after":
                os.kill(os.getpid(), sig)

        setattr(writer, step, hooked)
        writer.write(root, NEW, TARGETS, "spec.yaml", SHA, out=root.parent)

    return body


def count_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    root = fresh(tmp_path / "count")
    counts = {"_move": 0, "_write_file": 0}
    for step in counts:
        real = getattr(writer, step)

        def counting(*args, _step=step, _real=real):
            counts[_step] += 1
            _real(*args)

        monkeypatch.setattr(writer, step, counting)
    writer.write(root, NEW, TARGETS, "spec.yaml", SHA, out=root.parent)
    monkeypatch.undo()
    return counts


def outcome(root: Path, states: dict[str, dict[str, bytes]]) -> str:
    """'old' or 'new' when the folder holds exactly that output and --check agrees; 'torn' when --check
    flags the unfinished write for either spec. Anything else fails."""
    if (root / writer.STAGING).exists():
        for files in (OLD, NEW):
            report = writer.check(root, files, TARGETS)
            assert not report.clean and report.leftovers == [".mlspec-write/"], report
        return "torn"
    for name, files in (("old", OLD), ("new", NEW)):
        if snapshot(root) == states[name]:
            assert writer.check(root, files, TARGETS).clean, (
                f"--check disagrees: the tree is the {name} output"
            )
            return name
    raise AssertionError(
        f"neither the old nor the new output, and no leftover says so: {sorted(snapshot(root))}"
    )


def points(counts: dict[str, int]) -> list[tuple[str, int, str]]:
    every_move = [("_move", i, when) for i in range(1, counts["_move"] + 1) for when in ("before", "after")]
    every_file = [("_write_file", i, "after") for i in range(1, counts["_write_file"] + 1)]
    return every_move + every_file


def test_sigkill_at_every_step_leaves_old_or_new_after_recovery(tmp_path: Path, states, monkeypatch) -> None:
    counts = count_steps(tmp_path, monkeypatch)
    # writes: 5 files, the manifest, the journal; renames: the commit, 2 per target, the manifest
    assert counts == {"_move": 6, "_write_file": 7}
    seen = []
    for n, (step, index, when) in enumerate(points(counts)):
        root = fresh(tmp_path / f"kill-{n}")
        assert in_child(signal_at(root, step, index, when, signal.SIGKILL)) == signal.SIGKILL
        before_recovery = outcome(root, states)  # what --check says before anything repairs it
        writer.recover(root)
        after = outcome(root, states)
        assert after in ("old", "new"), (step, index, when)
        committed = step == "_move" and (index > 1 or when == "after")  # the first rename is the commit
        assert after == ("new" if committed else "old"), (step, index, when)
        seen.append((before_recovery, after))
    assert set(seen) == {("torn", "old"), ("torn", "new")}  # --check caught every torn tree


def test_sigterm_at_every_step_ends_clean_without_recovery(tmp_path: Path, states, monkeypatch) -> None:
    counts = count_steps(tmp_path, monkeypatch)
    results = set()
    for n, (step, index, when) in enumerate(points(counts)):
        root = fresh(tmp_path / f"term-{n}")
        assert in_child(signal_at(root, step, index, when, signal.SIGTERM)) == signal.SIGTERM
        result = outcome(root, states)
        assert result in ("old", "new"), (step, index, when)  # held until clean: never torn, no leftovers
        results.add(result)
    assert results == {"old", "new"}


def test_sigkill_at_random_moments_of_a_slowed_write(tmp_path: Path, states) -> None:
    rng = random.Random(19)
    step_seconds = 0.01

    def slow_write(root: Path) -> None:
        for step in ("_move", "_write_file"):
            real = getattr(writer, step)

            def slowed(*args, _real=real):
                time.sleep(step_seconds)
                _real(*args)

            setattr(writer, step, slowed)
        writer.write(root, NEW, TARGETS, "spec.yaml", SHA, out=root.parent)

    results = set()
    for n in range(25):
        root = fresh(tmp_path / f"random-{n}")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                slow_write(root)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 15 * step_seconds))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        outcome(root, states)
        writer.recover(root)
        results.add(outcome(root, states))
    assert results <= {"old", "new"}


MLSPEC = [sys.executable, "-c", "from mlspec.cli import main; main()"]


def test_the_real_compile_killed_at_random_moments(tmp_path: Path) -> None:
    """`mlspec compile` SIGKILLed at seeded random moments: --check flags what it left; the next compile cleans up."""
    old_spec, new_spec = (
        MINIMAL,
        MINIMAL.replace("metadata: {name: demo}", "metadata: {name: demo, owner: ml}"),
    )
    project = tmp_path / "project"
    project.mkdir()

    def mlspec(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*MLSPEC, *args], cwd=project, capture_output=True, text=True, timeout=120)

    def compile_(spec: str, *args: str) -> subprocess.CompletedProcess:
        (project / "spec.yaml").write_text(spec)
        return mlspec("compile", "spec.yaml", "--target", "ir", "--out", "out", *args)

    assert compile_(new_spec).returncode == 0
    new_tree = snapshot(project / "out")
    shutil.rmtree(project / "out")
    assert compile_(old_spec).returncode == 0
    old_tree = snapshot(project / "out")
    started = time.perf_counter()
    assert compile_(old_spec).returncode == 0
    duration = time.perf_counter() - started
    rng = random.Random(7)
    for _ in range(2):
        (project / "spec.yaml").write_text(new_spec)
        proc = subprocess.Popen(
            [*MLSPEC, "compile", "spec.yaml", "--target", "ir", "--out", "out"],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.7, 1.0) * duration)
        proc.kill()
        proc.wait()
        tree = snapshot(project / "out")
        leftovers = (project / "out" / "demo" / ".mlspec-write").exists()
        for spec, expected in ((old_spec, old_tree), (new_spec, new_tree)):
            check = compile_(spec, "--check")
            if leftovers:
                assert check.returncode == 1 and "leftover: .mlspec-write/" in check.stderr
            else:
                assert (check.returncode == 0) == (tree == expected), check.stderr
        assert compile_(old_spec).returncode == 0  # the next compile finishes or discards the killed one
        assert snapshot(project / "out") == old_tree and compile_(old_spec, "--check").returncode == 0
