"""The run directory shared by all steps of one pipeline run: a local path or an fsspec URI (s3://...)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.ir.model import IR
from mlspec.runtime import StepError, UsageError


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def load_ir(source: str) -> IR:
    """The IR from a local path, an fsspec URI, or inline JSON text."""
    from pydantic import ValidationError

    text = source
    if not source.lstrip().startswith("{"):
        try:
            if is_remote(source):
                import fsspec

                with fsspec.open(source, "r", encoding="utf-8") as fh:
                    text = fh.read()
            else:
                text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise UsageError(f"--ir {source}: no such file") from exc
        except OSError as exc:
            raise UsageError(f"--ir {source}: cannot read it ({exc})") from exc
    from mlspec.ir.model import IRVersionError, read_ir

    try:
        return read_ir(json.loads(text))
    except json.JSONDecodeError as exc:
        raise UsageError(f"--ir {source[:80]}: not JSON ({exc})") from exc
    except IRVersionError as exc:
        raise UsageError(f"--ir {source[:80]}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"--ir {source[:80]}: not a valid mlspec IR ({where}: {first['msg']})") from exc


class RunDir:
    """Paths and JSON/file helpers relative to RUN_DIR, for local directories and fsspec URIs alike."""

    def __init__(self, root: str):
        self.root = root.rstrip("/") if is_remote(root) else str(Path(root))
        if is_remote(self.root):
            import fsspec

            self.fs, self._base = fsspec.core.url_to_fs(self.root)
        else:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            self.fs = None
            self._base = self.root
        self._cache = Path(tempfile.mkdtemp(prefix="mlspec-run-")) if self.fs is not None else None

    def uri(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self, *parts: str) -> bool:
        if self.fs is None:
            return Path(self.root, *parts).exists()
        return self.fs.exists("/".join([self._base, *parts]))

    def write_bytes(self, data: bytes, *parts: str) -> str:
        if self.fs is None:
            path = Path(self.root, *parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            return str(path)
        target = "/".join([self._base, *parts])
        with self.fs.open(target, "wb") as fh:
            fh.write(data)
        return self.uri(*parts)

    def read_bytes(self, *parts: str) -> bytes:
        if self.fs is None:
            return Path(self.root, *parts).read_bytes()
        with self.fs.open("/".join([self._base, *parts]), "rb") as fh:
            return fh.read()

    def write_json(self, obj: Any, *parts: str) -> str:
        return self.write_bytes(
            (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode(), *parts
        )

    def remove(self, *parts: str) -> None:
        """Delete RUN_DIR/parts if it exists (a stale result must not pass for a new one)."""
        if not self.exists(*parts):
            return
        if self.fs is None:
            Path(self.root, *parts).unlink()
        else:
            self.fs.rm("/".join([self._base, *parts]))

    def read_json(self, *parts: str) -> Any:
        return json.loads(self.read_bytes(*parts))

    def local_path(self, *parts: str) -> Path:
        """A local file holding RUN_DIR/parts (downloaded to a cache for remote run dirs)."""
        if self.fs is None:
            return Path(self.root, *parts)
        assert self._cache is not None
        local = self._cache.joinpath(*parts)
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get("/".join([self._base, *parts]), str(local))
        return local

    def local_dir(self, *parts: str) -> Path:
        """A local directory whose files are uploaded to RUN_DIR/parts by `publish`."""
        if self.fs is None:
            path = Path(self.root, *parts)
        else:
            assert self._cache is not None
            path = self._cache.joinpath("out", *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, local: Path, *parts: str) -> None:
        if self.fs is None:
            return
        for file in sorted(local.rglob("*")):
            if file.is_file():
                rel = file.relative_to(local).as_posix()
                self.fs.put(str(file), "/".join([self._base, *parts, rel]))

    def list_dirs(self, *parts: str) -> list[str]:
        if self.fs is None:
            base = Path(self.root, *parts)
            return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.exists() else []
        remote = "/".join([self._base, *parts])
        if not self.fs.exists(remote):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(remote, detail=False))

    # ----------------------------------------------------------------------------------- step results
    def result_parts(self, step_id: str, trial: int | None = None) -> tuple[str, ...]:
        if trial is None:
            return ("steps", step_id, "result.json")
        return ("steps", step_id, str(trial), "result.json")

    def result(self, step_id: str, trial: int | None = None) -> dict[str, Any] | None:
        parts = self.result_parts(step_id, trial)
        if not self.exists(*parts):
            return None
        return self.read_json(*parts)

    def require(self, step_id: str, needed_by: str) -> dict[str, Any]:
        result = self.result(step_id)
        if result is None or result.get("status") != "succeeded":
            raise StepError(f"{needed_by} needs a successful '{step_id}' step in {self.root} (run it first)")
        return result


@dataclass
class StepContext:
    """Everything one step invocation knows: the IR, the run dir and the command-line overrides."""

    step_id: str
    ir: IR
    run: RunDir
    trial: int | None = None  # tune-trial's --trial
    shard: int | None = None  # monitor-summarize's --shard
    data_overrides: dict[str, str] = field(default_factory=dict)
    hparam_overrides: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)  # the step's own arguments, to re-launch it (torchrun)

    def ir_step(self):
        """This step in the IR's pipelines."""
        for pipeline in self.ir.pipelines:
            for step in pipeline.steps:
                if step.id == self.step_id:
                    return step
        raise StepError(f"the IR has no step '{self.step_id}'")

    def source_uri(self, name: str) -> str:
        for src in self.ir.data.sources:
            if src.name == name:
                return self.data_overrides.get(name, src.uri)
        if name in self.data_overrides:
            return self.data_overrides[name]
        raise StepError(f"the IR has no data source named '{name}'")

    def source_format(self, name: str) -> str:
        from mlspec.runtime.data import infer_format

        for src in self.ir.data.sources:
            if src.name == name:
                return (
                    src.format if name not in self.data_overrides else infer_format(self.data_overrides[name])
                )
        return infer_format(self.source_uri(name))
