"""Kubernetes deployment files: manifests and Helm values against the Kubernetes schemas, the GPU op tags through
dagster-k8s's own Job construction, and the Helm values consistent with deploy/dagster.prod.yaml.

No cluster and no helm binary here: what is checked is what can be checked offline (kubernetes-validate ships the
official OpenAPI-derived JSON schemas; dagster-k8s builds the exact V1Job a step pod would get).
"""

from __future__ import annotations

import json
import re

import dagster as dg
import kubernetes
import kubernetes_validate
import pytest
import yaml
from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

from dlcot_dagster.defs.gpu import GPU_POOL, GpuPodConfig, gpu_op_tags

from .conftest import REPO_ROOT

K8S = REPO_ROOT / "k8s"
K8S_VERSION = "1.33.0"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "values.yaml")


def validate(obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


def to_api(model) -> dict:
    return kubernetes.client.ApiClient().sanitize_for_serialization(model)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_strictly(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        validate(doc)


def test_strict_validation_catches_mistakes():
    """The validator is not a rubber stamp: a misspelt field and a wrong type are both rejected."""
    vllm = next(d for d in yaml.safe_load_all((K8S / "vllm.yaml").read_text()) if d["kind"] == "Deployment")
    typo = json.loads(json.dumps(vllm))
    typo["spec"]["template"]["spec"]["tolerations"][0]["efect"] = "NoSchedule"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(typo)
    wrong = json.loads(json.dumps(vllm))
    wrong["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(wrong)


def test_vllm_endpoint_runs_on_gpu_nodes():
    docs = {d["kind"]: d for d in yaml.safe_load_all((K8S / "vllm.yaml").read_text()) if d}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"dlcot/node-pool": "gpu"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    svc = docs["Service"]["spec"]
    assert svc["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert svc["ports"][0]["targetPort"] == container["ports"][0]["name"]
    env = yaml.safe_load((K8S / "dlcot-env.yaml").read_text())["data"]
    assert env["DLCOT_VLLM_URL"].startswith(f"http://{docs['Service']['metadata']['name']}.")


def _pod_from(spec_bits: dict, container_bits: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "check"},
        "spec": {**spec_bits, "containers": [{"name": "c", "image": "img", **container_bits}]},
    }


def test_helm_values_k8s_fragments_validate():
    """The Kubernetes objects embedded in the Helm values (resources, node selectors, env sources) are valid."""
    v = values()
    dep = v["dagster-user-deployments"]["deployments"][0]
    validate(_pod_from(
        {"nodeSelector": dep["nodeSelector"]},
        {"resources": dep["resources"], "envFrom": [{"configMapRef": m} for m in dep["envConfigMaps"]]},
    ))
    run = v["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    validate(_pod_from(run["podSpecConfig"], run["containerConfig"]))
    with pytest.raises(kubernetes_validate.ValidationError):  # limits must be a map, not a quantity
        validate(_pod_from({}, {"resources": dep["resources"] | {"limits": "8Gi"}}))
    # every config map the values reference is one that k8s/ defines
    defined = {yaml.safe_load((K8S / "dlcot-env.yaml").read_text())["metadata"]["name"]}
    referenced = {m["name"] for m in dep["envConfigMaps"]}
    referenced |= {m["name"] for m in v["runLauncher"]["config"]["k8sRunLauncher"]["envConfigMaps"]}
    referenced |= {m["name"] for m in v["dagsterDaemon"]["envConfigMaps"]}
    assert referenced == defined


def test_helm_values_code_server_args_parse_and_use_our_module():
    from dagster._cli.code_server import start_command

    dep = values()["dagster-user-deployments"]["deployments"][0]
    ctx = start_command.make_context("start", ["--port", str(dep["port"]), *dep["codeServerArgs"]])
    assert ctx.params["module_name"] in (("dlcot_dagster.definitions",), "dlcot_dagster.definitions")
    assert dep["includeConfigInLaunchedRuns"]["enabled"] is True


def _snake(d):
    if isinstance(d, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): _snake(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_snake(x) for x in d]
    return d


def test_helm_values_match_the_prod_instance_config():
    """The chart's values and deploy/dagster.prod.yaml say the same thing about limits, storage and launching."""
    from dagster._config import validate_config
    from dagster._core.instance.config import get_concurrency_config

    v = values()
    prod = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.prod.yaml").read_text())
    concurrency = _snake({k: val for k, val in v["concurrency"].items() if k != "enabled"})
    concurrency["pools"]["default_limit"] = concurrency["pools"].pop("default_limit")
    assert v["concurrency"]["enabled"] is True
    assert validate_config(get_concurrency_config().config_type, concurrency).success
    assert concurrency == prod["concurrency"]
    assert "tagConcurrencyLimits" not in v["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert v["dagsterDaemon"]["runCoordinator"]["type"] == prod["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert v["runLauncher"]["type"] == prod["run_launcher"]["class"] == "K8sRunLauncher"
    assert v["postgresql"]["enabled"] is False and v["generatePostgresqlPasswordSecret"] is False
    assert v["postgresql"]["postgresqlScheme"] == prod["run_storage"]["config"]["postgres_db"]["scheme"]
    assert v["postgresql"]["postgresqlPassword"] == ""  # never a password in the repo
    assert v["computeLogManager"]["type"] == prod["compute_logs"]["class"]
    env = yaml.safe_load((K8S / "dlcot-env.yaml").read_text())["data"]
    assert env["DLCOT_EXECUTOR"] == "k8s" and env["DLCOT_STORAGE_URL"].startswith("s3://")
    assert env["DLCOT_LANDING_URL"].startswith("s3://")
    assert not any(re.search(r"(SECRET|PASSWORD|ACCESS_KEY)", k) for k in env)


@dg.asset(op_tags=gpu_op_tags(GpuPodConfig(gpus=2, image="REGISTRY/dlcot-dagster-gpu:0.1.0")), pool=GPU_POOL)
def gpu_step() -> None:
    """Stands in for a GPU stage: carries exactly the tags the real GPU steps get."""


def test_gpu_tags_become_a_gpu_pod_through_dagster_k8s():
    """dagster-k8s's own code reads our op tags (JSON strings once on the op) and builds the step's Job."""
    tags = gpu_step.op.tags
    assert isinstance(tags["dagster-k8s/config"], str)  # op tag values are JSON strings when read back
    assert tags["dlcot/gpu"] == "true" and gpu_step.op.pool == GPU_POOL
    user_cfg = get_user_defined_k8s_config(tags)
    job_cfg = DagsterK8sJobConfig(
        job_image="REGISTRY/dlcot-dagster:0.1.0",
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        env_config_maps=["dlcot-env"],
        image_pull_policy="IfNotPresent",
        service_account_name="dlcot-dagster",
    )
    job = construct_dagster_k8s_job(
        job_cfg, ["dagster", "api", "execute_step"], "dagster-step-0123456789abcdef",
        user_defined_k8s_config=user_cfg, component="step_worker",
    )
    manifest = to_api(job)
    validate(manifest)
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["image"] == "REGISTRY/dlcot-dagster-gpu:0.1.0"  # the GPU image overrides the run's image
    assert pod["nodeSelector"] == {"dlcot/node-pool": "gpu"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert {"configMapRef": {"name": "dlcot-env"}} in container["envFrom"]

    # a CPU step (no tags) gets none of it
    plain = to_api(construct_dagster_k8s_job(job_cfg, ["x"], "dagster-step-cpu", user_defined_k8s_config=get_user_defined_k8s_config({})))
    validate(plain)
    assert "nodeSelector" not in plain["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in json.dumps(plain)


def test_gpu_node_pool_is_configurable_without_code(monkeypatch):
    monkeypatch.setenv("DLCOT_GPU_NODE_LABEL", "cloud.google.com/gke-accelerator")
    monkeypatch.setenv("DLCOT_GPU_NODE_POOL", "nvidia-h100-80gb")
    cfg = json.loads(json.dumps(gpu_op_tags()["dagster-k8s/config"]))
    assert cfg["pod_spec_config"]["node_selector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}


def test_dockerfiles_are_coherent():
    """No Docker engine here: check what can be checked without building."""
    for name, extra in (("Dockerfile", None), ("Dockerfile.gpu", "vllm")):
        text = (K8S / name).read_text()
        assert re.search(r"^FROM \S+", text, re.M)
        for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
            for part in src.split():
                assert (REPO_ROOT / part).exists(), f"{name}: COPY {part} is not in the repository"
        if extra:
            assert f'".[{extra}]"' in text
            assert "vllm.entrypoints.openai.api_server" in text
        assert "USER " in text and "DAGSTER_HOME" in text
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
