"""The four backends' outputs agree with each other, because each reads the same IR objects.

GPU node pool taints/labels, service-account and IAM role names, bucket and repository names, and the
latency SLO bucket are compared across the real Terraform JSON, Kubernetes YAML, KFP YAML and Airflow DAG.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

import mlspec

ROOT = Path(__file__).resolve().parents[1]
TF_EFFECT = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}


@pytest.fixture(scope="module")
def compiled():
    loaded = mlspec.load(ROOT / "specs" / "churn.yaml")
    result = mlspec.compile(loaded, ["terraform", "kubernetes", "kubeflow", "airflow"])
    files = {t: {a.path: a.data().decode() for a in arts} for t, arts in result.artifacts.items()}
    k8s = [doc for text in files["kubernetes"].values() for doc in yaml.safe_load_all(text) if doc]
    return result.ir, files, json.loads(files["terraform"]["main.tf.json"]), k8s


def _kind(objects, kind):
    return [o for o in objects if o.get("kind") == kind]


def test_gpu_pool_taints_and_labels_agree_everywhere(compiled):
    ir, files, tf, _ = compiled
    gpu_pool = next(p for p in ir.infrastructure.node_pools if p.gpu_type)
    taints = [(t.key, t.value, t.effect) for t in gpu_pool.taints]

    group = tf["resource"]["aws_eks_node_group"][gpu_pool.task_id]
    assert [(t["key"], t["value"], TF_EFFECT[t["effect"]]) for t in group["taint"]] == taints
    assert group["labels"] == gpu_pool.labels
    assert set(gpu_pool.node_selector.items()) <= set(group["labels"].items())

    # Kubeflow: every GPU task selects the pool and tolerates its taint
    kfp = yaml.safe_load(files["kubeflow"]["pipeline.yaml"].split("\n---\n")[-1])
    gpu_steps = [s for s in ir.pipeline("training").steps if s.resources.gpu_count]
    assert gpu_steps
    executors = kfp["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    placed = [e for e in executors.values() if e.get("tolerations")]
    assert len(placed) == len(gpu_steps)
    for executor in placed:
        assert executor["nodeSelector"]["labels"] == gpu_pool.node_selector
        assert [(t["key"], t["value"], t["effect"]) for t in executor["tolerations"]] == taints

    # Airflow: the KubernetesPodOperator of each GPU step carries the same selector and toleration
    dag = files["airflow"]["churn_training.py"]
    assert dag.count('operator="Equal"') == len(gpu_steps)
    for key, value, effect in taints:
        assert f'key="{key}"' in dag and f'value="{value}"' in dag and f'effect="{effect}"' in dag


def test_service_accounts_roles_and_trust_agree(compiled):
    ir, files, tf, k8s = compiled
    accounts = {o["metadata"]["name"]: o for o in _kind(k8s, "ServiceAccount")}
    roles = {r["name"]: key for key, r in tf["resource"]["aws_iam_role"].items()}
    documents = tf["data"]["aws_iam_policy_document"]
    for sa in ir.service_accounts:
        key = roles[sa.role_name]  # Terraform creates the IRSA role under the IR's exact name ...
        subjects = [
            value
            for statement in documents[f"{key}_assume"]["statement"]
            for condition in statement["condition"]
            if condition["variable"].endswith(":sub")
            for value in condition["values"]
        ]
        assert subjects == [f"system:serviceaccount:{sa.namespace}:{sa.name}"]  # ... trusted for that SA
        assert f"{sa.id}_role_arn" in tf["output"]
        k8s_sa = accounts[sa.name]  # ... and Kubernetes creates that SA annotated with the role
        assert k8s_sa["metadata"]["namespace"] == sa.namespace
        assert k8s_sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == sa.role_arn
        assert sa.role_arn.endswith(f":role/{sa.role_name}")
    # Airflow's pods run as the training account in that namespace
    dag = files["airflow"]["churn_training.py"]
    training = ir.service_account("training")
    assert f'service_account_name="{training.name}"' in dag
    assert f'namespace=literal("{training.namespace}")' in dag


def test_airflow_pods_are_allowed_out_by_the_namespace_policies(compiled):
    ir, files, _, k8s = compiled
    policy = next(p for p in _kind(k8s, "NetworkPolicy") if p["metadata"]["name"].endswith("pipeline-steps"))
    selector = policy["spec"]["podSelector"]
    dag = ast.parse(files["airflow"]["churn_training.py"])
    pod_labels = [
        ast.literal_eval(kw.value.args[0])
        for node in ast.walk(dag)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "labels"
    ]
    assert len(pod_labels) == len(ir.pipeline("training").steps)
    for labels in pod_labels:
        assert set(selector["matchLabels"].items()) <= set(labels.items())
        assert all(expr["key"] in labels for expr in selector["matchExpressions"])


def test_bucket_repository_and_slo_bucket_agree(compiled):
    ir, files, tf, k8s = compiled
    infra = ir.infrastructure
    assert tf["resource"]["aws_s3_bucket"]["artifacts"]["bucket"] == infra.artifacts_bucket
    assert tf["resource"]["aws_ecr_repository"]["models"]["name"] == infra.container_registry
    assert ir.artifacts_root.startswith(f"s3://{infra.artifacts_bucket}/")
    assert json.loads(files["kubeflow"]["recurring-run.json"])  # parses; run_root below
    assert f"{ir.artifacts_root}/runs" in files["kubeflow"]["pipeline.yaml"]
    (config,) = _kind(k8s, "ConfigMap")
    assert (
        json.loads(config["data"]["ir.json"])["infrastructure"]["artifacts_bucket"] == infra.artifacts_bucket
    )

    # the alert's latency bucket is one the server exports
    from mlspec.serving.metrics import latency_buckets

    rules = json.dumps(_kind(k8s, "PrometheusRule")[0])
    le = f'le=\\"{ir.serving.slo.latency_bucket_seconds:g}\\"'
    assert le in rules
    assert ir.serving.slo.latency_bucket_seconds in latency_buckets(
        ir.serving.latency_buckets_seconds, ir.serving.slo.latency_bucket_seconds
    )
