"""`dagster dev` serves the project: the UI answers and lists our assets, checks, sensor and schedule."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from .conftest import REPO_ROOT

QUERY = """
{
  assetNodes { assetKey { path } groupName isPartitioned assetChecksOrError { ... on AssetChecks { checks { name blocking } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name } schedules { name cronSchedule } } } }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    if body.get("errors"):
        raise AssertionError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def test_dagster_dev_serves_definitions(tmp_path):
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path), DLCOT_STORAGE_DIR=str(tmp_path / "storage"))
    (tmp_path / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # dagster dev installs its own handlers; start it with default SIGINT handling
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 180
        data = None
        while time.time() < deadline:
            try:
                data = graphql(port, QUERY)
                if data["assetNodes"]:
                    break
            except AssertionError:
                raise
            except Exception:  # not up yet
                pass
            assert proc.poll() is None, "dagster dev exited early"
            time.sleep(2)
        assert data and data["assetNodes"], "the UI did not come up within 180 s"
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
        assert {"raw_traces", "raw_trace_rejects", "segmented_traces", "pruned_solutions", "corrected_traces",
                "dropped_traces"} <= set(nodes)
        assert nodes["raw_traces"]["groupName"] == "ingest" and nodes["raw_traces"]["isPartitioned"]
        assert nodes["corrected_traces"]["groupName"] == "dlcot"
        checks = {c["name"]: c["blocking"] for c in nodes["raw_traces"]["assetChecksOrError"]["checks"]}
        assert checks.get("records_accounted_for") is True and checks.get("unique_ids") is True
        (repo,) = data["repositoriesOrError"]["nodes"]
        assert [s["name"] for s in repo["sensors"]] == ["landing_zone_sensor"]
        assert [s["name"] for s in repo["schedules"]] == ["reprocess_all_teachers"]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode is not None
    # nothing of ours is left running (zombies waiting to be reaped do not count)
    deadline = time.time() + 20
    while live_group_members(proc.pid) and time.time() < deadline:
        time.sleep(0.5)
    assert not live_group_members(proc.pid), "dagster dev left processes behind"


def live_group_members(pgid: int) -> list[int]:
    """Non-zombie processes whose process group is ``pgid`` (read from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            out.append(int(entry))
    return out
