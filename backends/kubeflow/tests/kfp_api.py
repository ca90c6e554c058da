"""A KFP API server on 127.0.0.1 that answers what kfp.Client sends to start a run of an uploaded pipeline
(v2beta1: healthz, pipelines by name, their versions, experiments, runs) and records every request.

No KFP API server runs here, so the kubeflow sink is proved against the REST contract of the real client
library only: that a real KFP accepts these requests is the limit of the proof.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import recording_api  # tests/recording_api.py (on sys.path through this folder's conftest)

V2 = "/apis/v2beta1"


class KfpApi:
    def __init__(self, pipelines: dict[str, tuple[str, str]]) -> None:
        """pipelines: display name -> (pipeline id, id of its newest version)."""
        self.pipelines = pipelines
        self.requests: list[dict] = []
        self.url = ""

    @property
    def runs(self) -> list[dict]:
        return [r["body"] for r in self.requests if (r["method"], r["path"]) == ("POST", f"{V2}/runs")]

    def answer(self, method: str, path: str, query: dict, body: dict | None) -> tuple[int, dict]:
        if (method, path) == ("GET", f"{V2}/healthz"):
            return 200, {"multi_user": False}
        if (method, path) == ("GET", f"{V2}/pipelines"):
            wanted = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
            found = [
                {"pipeline_id": pid, "display_name": name}
                for name, (pid, _) in self.pipelines.items()
                if name == wanted
            ]
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}
        for pid, version in self.pipelines.values():
            if (method, path) == ("GET", f"{V2}/pipelines/{pid}/versions"):
                return 200, {"pipeline_versions": [{"pipeline_id": pid, "pipeline_version_id": version}]}
        if (method, path) == ("GET", f"{V2}/experiments"):
            return 200, {}
        if (method, path) == ("POST", f"{V2}/experiments"):
            return 200, {"experiment_id": "experiment-1", **(body or {})}
        if (method, path) == ("POST", f"{V2}/runs"):
            return 200, {"run_id": f"run-{len(self.runs)}", **(body or {})}
        return 404, {"message": f"no route {method} {path}"}


@contextmanager
def serve(api: KfpApi) -> Iterator[KfpApi]:
    with recording_api.serve(api.answer) as (url, requests):
        api.url, api.requests = url, requests
        yield api
