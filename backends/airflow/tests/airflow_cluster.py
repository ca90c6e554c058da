"""A real Airflow 3 for the loop test: PostgreSQL (Debian's server, a cluster of its own on a free port of
127.0.0.1), `airflow db migrate`, then the api-server, the scheduler (LocalExecutor) and the dag-processor.

Everything is started here and stopped by its PID (each Airflow process leads its own process group, so its
task processes stop with it). PostgreSQL refuses to run as root: under root the cluster belongs to the
`postgres` user Debian's package creates, and its server runs as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, procs: list[subprocess.Popen] | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs or []:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: a process exited with {proc.returncode} ({proc.args})")
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process we started, and its process group (it leads one), by its PID."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@dataclass
class Postgres:
    """A cluster in a fresh temporary directory (the postgres user must be able to reach it: pytest's own
    temporary directories are private to root)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlspec-pg-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @staticmethod
    def binaries() -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed (scripts/setup.sh installs Debian's postgresql)")
        return Path(found[-1]).parent

    def _as_owner(self) -> dict:
        if os.geteuid() != 0:
            return {}
        owner = pwd.getpwnam("postgres")
        return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def start(self) -> str:
        bin_dir = self.binaries()
        data, sockets = self.root / "data", self.root / "sockets"
        for folder in (self.root, data, sockets):
            folder.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(folder, "postgres", "postgres")
        init = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8"],
            capture_output=True,
            text=True,
            timeout=120,
            **self._as_owner(),
        )
        assert init.returncode == 0, init.stdout + init.stderr
        with open(self.root / "postgres.log", "wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    *("-D", str(data), "-h", "127.0.0.1", "-p", str(self.port), "-k", str(sockets)),
                    *("-c", "fsync=off", "-c", "max_connections=200"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._as_owner(),
            )
        wait_for(lambda: _listening(self.port), 60, "PostgreSQL", [self.proc])
        import psycopg2

        db = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="postgres")
        try:
            db.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with db.cursor() as cursor:
                cursor.execute("CREATE DATABASE airflow")
        finally:
            db.close()
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGINT)  # PostgreSQL's fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Airflow:
    home: Path
    dags: Path
    env: dict[str, str]
    api_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def configure(self, database: str) -> None:
        self.env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": "mlspec-loop-test-secret-of-sufficient-length",  # pragma: allowlist secret
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                "PATH": f"{VENV_BIN}{os.pathsep}{self.env.get('PATH', '')}",
            }
        )

    def migrate(self) -> None:
        proc = subprocess.run(
            [str(VENV_BIN / "airflow"), "db", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def start(self) -> None:
        commands = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
        }
        for name, args in commands.items():
            with open(self.home / f"{name}.log", "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        [str(VENV_BIN / "airflow"), *args],
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        wait_for(lambda: self._healthy(), 180, "the Airflow api-server", self.procs)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, method: str, path: str, **kwargs) -> dict:
        resp = httpx.request(method, f"{self.url}/api/v2{path}", timeout=30, **kwargs)
        assert resp.status_code < 300, f"{method} {path}: HTTP {resp.status_code} {resp.text[:1000]}"
        return resp.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        def parsed() -> bool:
            resp = httpx.get(f"{self.url}/api/v2/dags/{dag_id}", timeout=10)
            return resp.status_code == 200

        wait_for(parsed, timeout, f"DAG {dag_id} parsed", self.procs)

    def runs(self, dag_id: str) -> list[dict]:
        """The DAG's runs, oldest first ([] while the dag-processor has not parsed it yet)."""
        resp = httpx.get(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
            params={"order_by": "run_after", "limit": 100},
            timeout=30,
        )
        if resp.status_code == 404:
            return []
        assert resp.status_code == 200, resp.text[:1000]
        return resp.json()["dag_runs"]

    def trigger(self, dag_id: str) -> str:
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        def finished() -> dict | None:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        run = wait_for(finished, timeout, f"{dag_id} run {run_id}", self.procs)
        assert run["state"] == "success", self.task_report(dag_id, run_id)
        return run

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tasks = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {t["task_id"]: t["state"] for t in tasks}

    def task_report(self, dag_id: str, run_id: str) -> str:
        states = self.task_states(dag_id, run_id)
        logs = []
        for log in sorted(self.home.glob(f"logs/**/dag_id={dag_id}/run_id={run_id}/**/*.log")):
            logs.append(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}")
        return f"{dag_id} {run_id}: {states}\n" + "\n".join(logs[-4:])

    def stop(self) -> None:
        # all three are told at once, then waited for: each takes seconds to finish its loops
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            _stop(proc)
