"""GPU steps: with DLCOT_GPU_STEPS=1 the DLCoT stages carry the GPU op tags and the `gpu` pool, and dagster-k8s's
own job construction turns those tags into a pod with the GPU limit; without it they stay plain CPU steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import REPO_ROOT

# Loads the real Definitions in a fresh interpreter (op tags are fixed when the assets module is imported),
# reads each DLCoT step's tags back from the job, and builds its step Job with dagster-k8s.
PROBE = r"""
import json, kubernetes
from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config
from dlcot_dagster.definitions import defs
from dlcot_dagster.defs.constants import REPROCESS_JOB

job = defs.resolve_job_def(REPROCESS_JOB)
cfg = DagsterK8sJobConfig(job_image="REGISTRY/dlcot-dagster:0.1.0", dagster_home="/opt/dagster/dagster_home",
                          instance_config_map="dagster-instance")
out = {}
for name in ("raw_traces", "segmented_traces", "pruned_solutions", "corrected_traces"):
    op = job.graph.node_named(name).definition
    tags = dict(op.tags)
    k8s_job = construct_dagster_k8s_job(cfg, ["dagster", "api", "execute_step"], f"dagster-step-{name.replace('_', '-')}",
                                        user_defined_k8s_config=get_user_defined_k8s_config(tags), component="step_worker")
    pod = kubernetes.client.ApiClient().sanitize_for_serialization(k8s_job)["spec"]["template"]["spec"]
    out[name] = {"tags": tags, "pool": op.pool, "pod": pod}
from dlcot_dagster.defs.llm.assets import teacher_generations
tags = dict(teacher_generations.op.tags)
k8s_job = construct_dagster_k8s_job(cfg, ["x"], "dagster-step-teacher-generations",
                                    user_defined_k8s_config=get_user_defined_k8s_config(tags), component="step_worker")
out["teacher_generations"] = {"tags": tags, "pool": teacher_generations.op.pool,
                              "pod": kubernetes.client.ApiClient().sanitize_for_serialization(k8s_job)["spec"]["template"]["spec"]}
print("PROBE" + json.dumps(out))
"""


def _probe(**env) -> dict:
    e = {**os.environ, **env}
    e.pop("DLCOT_EXECUTOR", None)
    res = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=e, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("PROBE"))
    return json.loads(line[len("PROBE"):])


def test_llm_stages_become_gpu_pods_when_the_location_runs_vllm_in_process():
    steps = _probe(DLCOT_GPU_STEPS="1", DLCOT_GPU_COUNT="4", DLCOT_GPU_IMAGE="REGISTRY/dlcot-dagster-gpu:0.1.0")
    for name in ("segmented_traces", "pruned_solutions", "corrected_traces"):
        st = steps[name]
        assert isinstance(st["tags"]["dagster-k8s/config"], str)  # JSON string once read back from the op
        assert st["tags"]["dlcot/gpu"] == "true" and st["pool"] == "gpu"
        container = st["pod"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"  # tensor_parallel_size=4 on one node
        assert container["image"] == "REGISTRY/dlcot-dagster-gpu:0.1.0"
        assert st["pod"]["nodeSelector"] == {"dlcot/node-pool": "gpu"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in st["pod"]["tolerations"]
    # ingestion never needs a GPU
    raw = steps["raw_traces"]
    assert "dagster-k8s/config" not in raw["tags"] and "nvidia.com/gpu" not in json.dumps(raw["pod"])


def test_stages_are_cpu_steps_by_default_and_teacher_generation_is_always_a_gpu_step():
    steps = _probe(DLCOT_GPU_STEPS="")
    for name in ("segmented_traces", "pruned_solutions", "corrected_traces"):
        assert "dagster-k8s/config" not in steps[name]["tags"] and steps[name]["pool"] is None
        assert "nvidia.com/gpu" not in json.dumps(steps[name]["pod"])
    gen = steps["teacher_generations"]
    assert gen["pool"] == "gpu" and gen["pod"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gen["pod"]["nodeSelector"] == {"dlcot/node-pool": "gpu"}
