"""The live line under `mlspec run` while a step works: trials done for a fan-out step, epochs for
training. Drawn with rich on a terminal only and erased when the step ends; piped output stays plain."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mlspec.ir.model import Step
from mlspec.runtime.context import RunDir

_EPOCH = re.compile(rb"epoch (\d+)/(\d+)")


def _last_epoch(log: Path) -> tuple[int, int] | None:
    """The newest `epoch N/M` line a training step printed (training.fit prints one per epoch)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 4096))
            found = _EPOCH.findall(fh.read())
    except OSError:
        return None
    return (int(found[-1][0]), int(found[-1][1])) if found else None


class StepProgress:
    def __init__(self, progress: Any):
        self._progress = progress
        self._task: Any = None

    @classmethod
    def for_terminal(cls) -> StepProgress | None:
        if not sys.stdout.isatty():
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        return cls(
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TimeElapsedColumn(),
                transient=True,
            )
        )

    def start(self, label: str) -> None:
        self._progress.start()
        self._task = self._progress.add_task(label, total=None, unit="")

    def update(self, step: Step, run: RunDir, log_dir: Path) -> None:
        if step.fan_out:
            total = step.fan_out.count
            done = sum(1 for i in range(total) if run.result(step.id, i) is not None)
            self._progress.update(self._task, completed=done, total=total, unit="trials")
            return
        epoch = _last_epoch(log_dir / "log.txt")
        if epoch is not None:
            self._progress.update(self._task, completed=epoch[0], total=epoch[1], unit="epochs")

    def stop(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._progress.stop()
