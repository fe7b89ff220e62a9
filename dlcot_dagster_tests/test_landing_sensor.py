"""The landing sensor adds teacher partitions and requests exactly one run per changed set of files."""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path

import dagster as dg

from dlcot_dagster.defs.landing.schedules import build_reprocess_schedule
from dlcot_dagster.defs.landing.sensors import landing_zone_sensor
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource
from dlcot_dagster.domain.landing import LocalLanding, plan_changes


def dump(path: Path, n: int, extra: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            json.dumps({"id": i, "problem": f"p{i}{extra}", "answer": "1", "response": "<think>t</think>1"}) + "\n"
            for i in range(n)
        )
    )


class Ticker:
    """Evaluates the sensor like the daemon: applies partition requests, keeps the cursor, dedupes run keys."""

    def __init__(self, instance, landing: Path):
        self.instance = instance
        self.landing = landing
        self.cursor = None
        self.run_keys: set[str] = set()

    def tick(self):
        ctx = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"landing_zone": LandingZoneResource(root=str(self.landing))},
        )
        result = landing_zone_sensor(ctx)
        added = []
        for req in result.dynamic_partitions_requests or []:
            assert req.partitions_def_name == teacher_partitions.name
            self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
            added += list(req.partition_keys)
        runs = [r for r in (result.run_requests or []) if r.run_key not in self.run_keys]
        self.run_keys |= {r.run_key for r in runs}
        self.cursor = result.cursor
        return added, [r.partition_key for r in runs], result


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_sensor_partitions_and_runs(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    with dg.instance_for_test() as instance:
        t = Ticker(instance, landing)
        assert t.tick()[:2] == ([], [])

        dump(landing / "qwq" / "a.jsonl", 3)
        added, runs, _ = t.tick()
        assert added == ["qwq"] and runs == ["qwq"]
        assert instance.get_dynamic_partitions(teacher_partitions.name) == ["qwq"]

        # nothing changed: nothing to do
        assert t.tick()[:2] == ([], [])
        # touched but same content: no run
        bump_mtime(landing / "qwq" / "a.jsonl")
        assert t.tick()[:2] == ([], [])

        # two files change at once: exactly one run
        dump(landing / "qwq" / "a.jsonl", 4)
        dump(landing / "qwq" / "b.jsonl", 2)
        assert t.tick()[:2] == ([], ["qwq"])
        assert t.tick()[:2] == ([], [])

        # a new teacher folder: a new partition and one run; an empty folder gets a partition but no run
        dump(landing / "r1" / "x.jsonl", 1)
        (landing / "empty-teacher").mkdir()
        (landing / "bad name!").mkdir()
        added, runs, _ = t.tick()
        assert sorted(added) == ["empty-teacher", "r1"] and runs == ["r1"]

        # content goes back to an earlier state: the run key was seen, the same content never runs twice
        dump(landing / "r1" / "x.jsonl", 2)
        assert t.tick()[1] == ["r1"]
        dump(landing / "r1" / "x.jsonl", 1)
        assert t.tick()[1] == []


def test_run_requests_carry_content_hash(tmp_path):
    landing = tmp_path / "landing"
    dump(landing / "qwq" / "a.jsonl", 3)
    teachers, changes, cursor = plan_changes(LocalLanding(landing), {})
    assert teachers == ["qwq"] and len(changes) == 1
    assert changes[0].run_key.startswith("qwq:") and cursor["qwq"]["hash"] == changes[0].content_hash
    # same content in another folder has the same hash but a different run key
    dump(landing / "copy" / "a.jsonl", 3)
    _, changes2, _ = plan_changes(LocalLanding(landing), cursor)
    assert [c.teacher for c in changes2] == ["copy"]
    assert changes2[0].run_key != changes[0].run_key


def test_schedule_requests_every_partition_and_is_off_by_default():
    sched = build_reprocess_schedule("*/15 * * * *")
    assert sched.cron_schedule == "*/15 * * * *"
    assert sched.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.instance_for_test() as instance:
        when = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.timezone.utc)
        ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
        assert isinstance(sched(ctx), dg.SkipReason)
        instance.add_dynamic_partitions(teacher_partitions.name, ["a", "b"])
        reqs = sched(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert sorted(r.partition_key for r in reqs) == ["a", "b"]
        assert len({r.run_key for r in reqs}) == 2
