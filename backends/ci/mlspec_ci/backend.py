"""CIBackend: GitHub Actions workflows for one system, generated from the IR.

`pull-request.yml` runs the five test layers as separate jobs: data validation, model performance (gates and
no regression against the champion), integration (the whole pipeline, generated output current), load
(the server against the spec's SLO) and security and compliance (checkov, PII and leakage checks, secrets).
`main.yml` builds and pushes the runtime image, then per environment plans Terraform, applies it after
approval (a GitHub environment with required reviewers), applies the manifests and watches the rollout.
Actions are pinned by commit; each job has the least `permissions` it needs; AWS is reached through
GitHub's OIDC provider and a role ARN kept in a variable, never stored keys.

Per-environment values (region, cluster, image) are read at run time from `mlspec ir --env`, so the
workflow and the IR can never disagree; what is static here (spec path, output folders, environments,
which layers apply) is the IR's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml

from mlspec.backends import Artifact, BaseBackend, EmitContext, Feature, capability_table
from mlspec.ir.model import IR

# Actions by the commit of a release tag (tag in the comment, as Dependabot keeps them).
ACTIONS = {
    "checkout": ("actions/checkout", "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "setup-python": ("actions/setup-python", "5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "aws-credentials": (
        "aws-actions/configure-aws-credentials",
        "e6de054238d6b7531b4efff3b6587d9aade6a06c",
        "v6.2.3",
    ),
    "ecr-login": ("aws-actions/amazon-ecr-login", "03f1aad4c6c7ffd436567f42f9384779290529bd", "v2.1.7"),
    "setup-terraform": ("hashicorp/setup-terraform", "dfe3c3f87815947d99a8997f908cb6525fc44e9e", "v4.0.1"),
    "upload-artifact": ("actions/upload-artifact", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "download-artifact": ("actions/download-artifact", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
}
TERRAFORM_VERSION = "1.11.4"
CHECKOV_VERSION = "3.2.469"
DETECT_SECRETS_VERSION = "1.5.0"
PYTHON = "3.11"
# checkov findings mlspec accepts, each with its reason in docs/security.md (a test keeps the two equal).
ACCEPTED_CHECKOV = {
    "terraform": ("CKV_AWS_18", "CKV_AWS_144", "CKV2_AWS_62"),
    "kubernetes": ("CKV_K8S_43",),
}
# Step names the local test of the jobs (backends/ci/tests) skips: they install tools or set up the runner.
SETUP_PREFIX = "Set up"
ROLE_VAR = "MLSPEC_AWS_ROLE_ARN"


class CIBackend(BaseBackend):
    name = "ci"
    version = "1"
    capabilities: ClassVar = capability_table(
        full=(
            Feature.PIPELINE_TRAINING,
            Feature.GATES,
            Feature.SERVING,
            Feature.SERVING_SLO,
            Feature.INFRASTRUCTURE_AWS,
            Feature.INFRASTRUCTURE_STATE,
        ),
        not_yet=(Feature.INFRASTRUCTURE_GCP,),
    )
    reasons: ClassVar = {Feature.INFRASTRUCTURE_GCP: "deploy jobs authenticate to AWS only"}

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        if ir.system.environment is not None:
            return []  # the base compile's workflows cover every environment
        return [
            Artifact("pull-request.yml", dump(pull_request(ir))),
            Artifact("main.yml", dump(main(ir))),
            Artifact("README.md", readme(ir)),
        ]


# ------------------------------------------------------------------------------------------------ helpers
def uses(action: str, step_name: str, **with_: Any) -> dict[str, Any]:
    repo, commit, _tag = ACTIONS[action]
    step: dict[str, Any] = {"name": step_name, "uses": f"{repo}@{commit}"}
    if with_:
        step["with"] = with_
    return step


def run(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra, "run": script.strip() + "\n"}


def spec_path(ir: IR) -> str:
    return ir.system.spec_path


def out(ir: IR, target: str, env: str | None = None) -> str:
    return "/".join(["generated", ir.system.name, *([env] if env else []), target])


def install(ir: IR, extras: list[str]) -> list[dict[str, Any]]:
    assert ir.image is not None
    requirement = f"mlspec[{','.join(extras)}]=={ir.image.mlspec_version}"
    return [
        uses("checkout", "Set up: check out", **{"persist-credentials": False}),
        uses("setup-python", "Set up: Python", **{"python-version": PYTHON}),
        run(f"{SETUP_PREFIX}: install mlspec", f'python -m pip install "{requirement}"'),
    ]


def job(
    name: str, steps: list[dict[str, Any]], *, permissions: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "runs-on": "ubuntu-24.04",
        "permissions": permissions or {"contents": "read"},
        "timeout-minutes": 60,
        **extra,
        "steps": steps,
    }


# ------------------------------------------------------------------------------------------------ pull requests
def evaluate_verdict(run_id: str) -> str:
    return f"""
python - <<'PY'
import json, sys
result = json.load(open(".mlspec/runs/{run_id}/steps/evaluate/result.json"))
for gate in result["gates"]:
    print(("PASS " if gate["passed"] else "FAIL ") + gate["message"])
print("champion:", result.get("champion_reason") or ("beaten" if result["beats_champion"] else "not beaten"))
if not result["gates_passed"]:
    sys.exit("model performance: a gate failed")
if not result["beats_champion"]:
    sys.exit("model performance: the candidate regresses against the current champion")
PY
"""


def pull_request(ir: IR) -> dict[str, Any]:
    assert ir.image is not None
    spec = spec_path(ir)
    envs = ir.system.environments
    runtime_extras = list(ir.image.extras)
    compile_extras = sorted({*runtime_extras, *ir.targets} - {"ir"})
    jobs: dict[str, Any] = {}
    jobs["data-validation"] = job(
        "Data validation",
        [
            *install(ir, runtime_extras),
            run("Validate the data", f"mlspec run {spec} --until validate-data --run-id ci-data"),
        ],
    )
    has_gates = bool(ir.evaluation.gates) or ir.evaluation.champion_metric is not None
    if has_gates:
        jobs["model-performance"] = job(
            "Model performance",
            [
                *install(ir, runtime_extras),
                run("Train and evaluate", f"mlspec run {spec} --until evaluate --run-id ci-model"),
                run("Gates and regression against the champion", evaluate_verdict("ci-model")),
            ],
        )
    check = "\n".join(
        [f"mlspec compile {spec} --check", *(f"mlspec compile {spec} --env {e} --check" for e in envs)]
    )
    integration = [
        *install(ir, compile_extras),
        run("Generated output is current", check),
        run("Run the pipeline end to end", f"mlspec run {spec} --run-id ci-integration"),
    ]
    if ir.serving is not None:
        integration.append(
            uses(
                "upload-artifact",
                "Keep the registry for the load test",
                name="mlspec-registry",
                path=".mlspec/",
                **{"include-hidden-files": True, "retention-days": 1},
            )
        )
    jobs["integration"] = job("Integration", integration)
    if ir.serving is not None and ir.serving.slo.objective is not None:
        port = ir.serving.port
        jobs["load"] = job(
            "Load and performance",
            [
                *install(ir, runtime_extras),
                uses(
                    "download-artifact",
                    "Set up: the registry the integration job filled",
                    name="mlspec-registry",
                    path=".mlspec/",
                ),
                run(
                    "Serve and drive load against the SLO",
                    f"""
mlspec serve {spec} --host 127.0.0.1 --port {port} --no-cache &
server=$!
trap 'kill "$server"' EXIT
for _ in $(seq 120); do
  if curl -fsS http://127.0.0.1:{port}/v2/health/ready >/dev/null; then break; fi
  sleep 1
done
mlspec loadtest http://127.0.0.1:{port} --spec {spec} --duration 30s
""",
                ),
            ],
            needs="integration",
        )
    checkov = [
        *(
            f"checkov -d {out(ir, 'terraform', e)} --framework terraform_json --skip-download --compact --quiet "
            f"--skip-check {','.join(ACCEPTED_CHECKOV['terraform'])}"
            for e in [None, *envs]
            if "terraform" in ir.targets and ir.infrastructure is not None
        ),
        *(
            f"checkov -d {out(ir, 'kubernetes', e)} --framework kubernetes --skip-path platform --skip-download "
            f"--compact --quiet --skip-check {','.join(ACCEPTED_CHECKOV['kubernetes'])}"
            for e in [None, *envs]
            if "kubernetes" in ir.targets
        ),
    ]
    security = [
        *install(ir, runtime_extras),
        run(
            f"{SETUP_PREFIX}: scanners",
            f'python -m pip install "checkov=={CHECKOV_VERSION}" "detect-secrets=={DETECT_SECRETS_VERSION}"',
        ),
        run(
            "Lint: PII used as a feature, secrets written in the spec", f"mlspec lint {spec} --format github"
        ),
        run("PII and leakage checks on the data", f"mlspec run {spec} --until validate-data --run-id ci-pii"),
        run(
            "Secret scan of the tracked files",
            # manifest.json holds sha256 digests, which entropy detectors would flag
            "git ls-files -z | grep -zv -e '^generated/.*manifest\\.json$' -e '\\.lock\\.hcl$' "
            "| xargs -0 detect-secrets-hook --",
        ),
    ]
    if checkov:
        security.append(run("checkov on the generated Terraform and manifests", "\n".join(checkov)))
    jobs["security"] = job("Security and compliance", security)
    return {
        "name": f"mlspec {ir.system.name}: pull request",
        "on": {"pull_request": {"branches": ["main"]}},
        "permissions": {},
        "concurrency": {
            "group": f"mlspec-{ir.system.name}-pr-${{{{ github.ref }}}}",
            "cancel-in-progress": True,
        },
        "jobs": jobs,
    }


# ------------------------------------------------------------------------------------------------ main
def ir_value(spec: str, env: str | None, path: str) -> str:
    flag = f" --env {env}" if env else ""
    return f"$(mlspec ir {spec}{flag} | python -c 'import json, sys; print(json.load(sys.stdin){path})')"


def aws(region_expr: str) -> dict[str, Any]:
    return uses(
        "aws-credentials",
        "Set up: AWS credentials (OIDC)",
        **{"role-to-assume": f"${{{{ vars.{ROLE_VAR} }}}}", "aws-region": region_expr},
    )


def main(ir: IR) -> dict[str, Any]:
    assert ir.image is not None
    spec = spec_path(ir)
    image = ir.image
    jobs: dict[str, Any] = {}
    build = [
        *install(ir, list(image.extras)),
    ]
    region = image.region or (ir.infrastructure.region if ir.infrastructure else "us-east-1")
    if image.registry_kind == "ecr":
        build += [aws(region), uses("ecr-login", "Set up: log in to ECR")]
        exists = (
            f'aws ecr describe-images --region {region} --repository-name "{image.ecr_repository}" '
            f'--image-ids imageTag="{image.tag}" >/dev/null 2>&1'
        )
    elif image.registry_kind == "ghcr":
        build.append(
            run(
                f"{SETUP_PREFIX}: log in to GHCR",
                'echo "$GITHUB_TOKEN" | docker login ghcr.io --username "$GITHUB_ACTOR" --password-stdin',
                env={"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"},
            )
        )
        exists = f'docker manifest inspect "{image.reference}" >/dev/null 2>&1'
    else:
        build.append(
            run(
                f"{SETUP_PREFIX}: log in to {image.registry}",
                f'echo "$REGISTRY_PASSWORD" | docker login {image.registry} --username "$REGISTRY_USERNAME" --password-stdin',
                env={
                    "REGISTRY_USERNAME": "${{ secrets.REGISTRY_USERNAME }}",
                    "REGISTRY_PASSWORD": "${{ secrets.REGISTRY_PASSWORD }}",
                },
            )
        )
        exists = f'docker manifest inspect "{image.reference}" >/dev/null 2>&1'
    build.append(
        run(
            "Build and push the runtime image",
            f"""
image={ir_value(spec, None, '["image"]["reference"]')}
if {exists}; then
  echo "::notice::$image exists (tags are immutable); bump the tag in images.runtime to publish a new image"
  exit 0
fi
docker build --file {out(ir, "container")}/Dockerfile --tag "$image" .
docker push "$image"
""",
        )
    )
    permissions = (
        {"contents": "read", "id-token": "write"} if image.registry_kind == "ecr" else {"contents": "read"}
    )
    if image.registry_kind == "ghcr":
        permissions["packages"] = "write"
    jobs["image"] = job("Runtime image", build, permissions=permissions)

    previous = "image"
    deployable = ir.infrastructure is not None and ir.infrastructure.cloud == "aws"
    environments: list[str | None] = list(ir.system.environments) or [None]
    for env in environments:
        key = env or "default"
        env_flag = f" --env {env}" if env else ""
        region_expr = region
        if deployable and "terraform" in ir.targets:
            tf = out(ir, "terraform", env)
            jobs[f"plan-{key}"] = job(
                f"Terraform plan ({key})",
                [
                    *install(ir, ["runtime"]),
                    aws(region_expr),
                    uses(
                        "setup-terraform",
                        "Set up: Terraform",
                        terraform_version=TERRAFORM_VERSION,
                        terraform_wrapper=False,
                    ),
                    run(
                        "Plan",
                        f"terraform -chdir={tf} init -input=false\nterraform -chdir={tf} plan -input=false -out=tfplan",
                    ),
                    uses(
                        "upload-artifact",
                        "Keep the plan",
                        name=f"tfplan-{key}",
                        path=f"{tf}/tfplan",
                        **{"retention-days": 5},
                    ),
                ],
                permissions={"contents": "read", "id-token": "write"},
                needs=previous,
            )
            jobs[f"apply-{key}"] = job(
                f"Terraform apply ({key})",
                [
                    *install(ir, ["runtime"]),
                    aws(region_expr),
                    uses(
                        "setup-terraform",
                        "Set up: Terraform",
                        terraform_version=TERRAFORM_VERSION,
                        terraform_wrapper=False,
                    ),
                    uses("download-artifact", "Set up: the reviewed plan", name=f"tfplan-{key}", path=tf),
                    run(
                        "Apply the reviewed plan",
                        f"terraform -chdir={tf} init -input=false\nterraform -chdir={tf} apply -input=false tfplan",
                    ),
                ],
                permissions={"contents": "read", "id-token": "write"},
                needs=f"plan-{key}",
                environment=key,  # required reviewers on this GitHub environment approve the apply
            )
            previous = f"apply-{key}"
        if "kubernetes" in ir.targets and deployable:
            k8s = out(ir, "kubernetes", env)
            serving = ir.serving
            watch = "echo 'no serving unit to watch'"
            if serving is not None:
                name = serving.id
                if serving.rollout.strategy in ("canary", "blue-green"):
                    total = (
                        sum(
                            (serving.rollout.step_duration_seconds or 0)
                            for w in serving.rollout.steps
                            if w < 100
                        )
                        + 600
                    )
                    watch = (
                        f"kubectl --namespace {ir.system.namespace} wait rollout/{name} "
                        f"--for=jsonpath='{{.status.phase}}'=Healthy --timeout={total}s"
                    )
                else:
                    watch = f"kubectl --namespace {ir.system.namespace} rollout status deployment/{name} --timeout=900s"
            platform = ""
            if any(c.installed_by == "kubernetes" for c in ir.platform):
                platform = (
                    f"kubectl apply --server-side -k {k8s}/platform || true\n"
                    "kubectl wait --for condition=established --timeout=120s crd --all\n"
                    f"kubectl apply --server-side -k {k8s}/platform\n"
                )
            jobs[f"deploy-{key}"] = job(
                f"Deploy ({key})",
                [
                    *install(ir, ["runtime"]),
                    aws(region_expr),
                    run(
                        "Apply the manifests",
                        f"""
cluster={ir_value(spec, env, '["infrastructure"]["cluster_name"]')}
aws eks update-kubeconfig --name "$cluster" --region {region_expr}
{platform}mlspec doctor {spec}{env_flag} --context "$(kubectl config current-context)"
kubectl apply -k {k8s}
""",
                    ),
                    run("Watch the rollout", watch),
                ],
                permissions={"contents": "read", "id-token": "write"},
                needs=previous,
                environment=key,
                # The cluster's API endpoint is private: a runner inside the VPC (see README.md).
                **{"runs-on": "${{ vars.MLSPEC_DEPLOY_RUNNER || 'ubuntu-24.04' }}"},
            )
            previous = f"deploy-{key}"
    return {
        "name": f"mlspec {ir.system.name}: deliver",
        "on": {"push": {"branches": ["main"]}},
        "permissions": {},
        "concurrency": {"group": f"mlspec-{ir.system.name}-deliver", "cancel-in-progress": False},
        "jobs": jobs,
    }


# ------------------------------------------------------------------------------------------------ output
class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(doc: dict[str, Any]) -> str:
    header = "# Generated by mlspec. Do not edit: change the spec and run `mlspec compile`.\n"
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100_000)
    for (
        repo,
        commit,
        tag,
    ) in ACTIONS.values():  # the release each pinned commit is, for reviewers and Dependabot
        text = text.replace(f"uses: {repo}@{commit}\n", f"uses: {repo}@{commit}  # {tag}\n")
    return header + text


def readme(ir: IR) -> str:
    envs = ", ".join(ir.system.environments) or "default"
    return "\n".join(
        [
            f"# {ir.system.name}: CI/CD (GitHub Actions)",
            "",
            "Copy both workflows to `.github/workflows/` (the integration job's `mlspec compile --check` keeps "
            "`generated/` current; re-copy after a compile).",
            "",
            "- `pull-request.yml`: the five test layers as separate jobs (data validation, model performance, "
            "integration, load and performance, security and compliance).",
            f"- `main.yml`: builds and pushes `{ir.images['runtime']}`, then for each environment ({envs}) "
            "plans Terraform, applies the reviewed plan, applies the manifests and watches the rollout.",
            "",
            "Repository settings:",
            "",
            f"- Variable `{ROLE_VAR}` (repository, and per GitHub environment): an IAM role that trusts GitHub's "
            "OIDC provider (`token.actions.githubusercontent.com`) for this repository; the image job pushes to "
            "ECR with it, the plan/apply jobs run Terraform with it, the deploy jobs call EKS with it. No access "
            "keys are stored.",
            f"- GitHub environments {envs}, each with required reviewers: a Terraform apply and a deploy wait "
            "for approval.",
            "- Variable `MLSPEC_DEPLOY_RUNNER`: the label of a runner that can reach the cluster's private API "
            "endpoint (self-hosted in the VPC); GitHub-hosted runners cannot.",
            "",
        ]
    )
