"""Op tags that give a step a GPU pod when runs execute on Kubernetes (k8s_job_executor / K8sRunLauncher).

The tags are plain data (``dagster-k8s/config``): locally they do nothing, on Kubernetes dagster-k8s turns them
into the step pod's resources, node selector and tolerations. GPU steps also join one concurrency pool, so they
queue instead of overloading a node.
"""

import os

from pydantic import BaseModel, Field

GPU_POOL = "gpu"


class GpuPodConfig(BaseModel):
    """What a GPU step asks of Kubernetes. Defaults come from the environment, so no code changes per cluster."""

    gpus: int = Field(default_factory=lambda: int(os.environ.get("DLCOT_GPU_COUNT", "1")))
    resource_name: str = Field(default_factory=lambda: os.environ.get("DLCOT_GPU_RESOURCE", "nvidia.com/gpu"))
    node_selector: dict[str, str] = Field(
        default_factory=lambda: {os.environ.get("DLCOT_GPU_NODE_LABEL", "dlcot/node-pool"): os.environ.get("DLCOT_GPU_NODE_POOL", "gpu")}
    )
    toleration_key: str = Field(default_factory=lambda: os.environ.get("DLCOT_GPU_TOLERATION_KEY", "nvidia.com/gpu"))
    cpu: str = Field(default_factory=lambda: os.environ.get("DLCOT_GPU_STEP_CPU", "8"))
    memory: str = Field(default_factory=lambda: os.environ.get("DLCOT_GPU_STEP_MEMORY", "64Gi"))
    image: str | None = Field(default_factory=lambda: os.environ.get("DLCOT_GPU_IMAGE") or None)


def gpu_op_tags(cfg: GpuPodConfig | None = None) -> dict:
    """``op_tags`` for a GPU step: ``dagster-k8s/config`` with the GPU limit, node selector and toleration."""
    cfg = cfg or GpuPodConfig()
    container: dict = {
        "resources": {
            "limits": {cfg.resource_name: str(cfg.gpus), "memory": cfg.memory},
            "requests": {"cpu": cfg.cpu, "memory": cfg.memory},
        }
    }
    if cfg.image:
        container["image"] = cfg.image
    return {
        "dagster-k8s/config": {
            "container_config": container,
            "pod_spec_config": {
                "node_selector": dict(cfg.node_selector),
                "tolerations": [
                    {"key": cfg.toleration_key, "operator": "Exists", "effect": "NoSchedule"},
                ],
            },
        },
        "dlcot/gpu": "true",
    }


def gpu_steps_enabled() -> bool:
    """``DLCOT_GPU_STEPS=1``: this code location runs vLLM inside its DLCoT steps, so they are GPU steps."""
    return os.environ.get("DLCOT_GPU_STEPS", "").strip().lower() in ("1", "true", "yes", "on")


def gpu_step_kwargs(enabled: bool | None = None) -> dict:
    """``op_tags`` + ``pool`` for an asset decorator: GPU tags and the ``gpu`` pool when enabled, else nothing."""
    if enabled is None:
        enabled = gpu_steps_enabled()
    return {"op_tags": gpu_op_tags(), "pool": GPU_POOL} if enabled else {}
