"""Size-based sharding: a teacher above ``shard_above_bytes`` splits into a power of two of shards, N only grows."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.landing.sensors import landing_zone_sensor
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource, TokenizerResource
from dlcot_dagster.defs.settings import parse_bytes
from dlcot_dagster.domain.landing import LocalLanding
from dlcot_dagster.domain.sharding import ShardedLanding, shard_of, shard_partition_key, shards_for_size

T = "t"


def key(i: int) -> str:
    return shard_partition_key(T, i)


def write_dump(path: Path, tag: str) -> int:
    """Three records; every file written here has the same size (tags have the same length)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(
        json.dumps({"id": i, "problem": f"{tag} {i}", "answer": str(i), "response": f"<think>{tag}</think>{i}"}) + "\n"
        for i in range(3)
    ))
    return path.stat().st_size


def names_by_shard4(count: int = 200) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {0: [], 1: [], 2: [], 3: []}
    for k in range(count):
        name = f"f-{k:03d}.jsonl"
        out[shard_of(name, 4)].append(name)
    return out


class Ticker:
    """The sensor as the daemon runs it: applies partition requests, keeps the cursor, dedupes run keys."""

    def __init__(self, instance, zone: LandingZoneResource):
        self.instance, self.zone, self.cursor, self.seen = instance, zone, None, set()

    def tick(self) -> tuple[list[str], list[str]]:
        """(added partition keys, partition keys with a new run); the sensor's warnings go to ``self.warnings``."""
        self.warnings: list[str] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: self.warnings.append(record.getMessage())  # type: ignore[method-assign]
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources={"landing_zone": self.zone}) as ctx:
            ctx.log.addHandler(handler)  # the context's logger is created once and kept
            res = landing_zone_sensor(ctx)
        added = []
        for req in res.dynamic_partitions_requests or []:
            assert isinstance(req, dg.AddDynamicPartitionsRequest)  # the sensor never deletes partitions
            self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
            added += list(req.partition_keys)
        runs = [r for r in res.run_requests or [] if r.run_key not in self.seen]
        self.seen |= {r.run_key for r in runs}
        self.cursor = res.cursor
        return sorted(added), sorted(r.partition_key for r in runs)


def test_shard_count_by_size():
    assert shards_for_size(10, None) == 1
    assert shards_for_size(100, 100) == 1
    assert shards_for_size(101, 100) == 2
    assert shards_for_size(200, 100) == 2
    assert shards_for_size(201, 100) == 4  # ceil(2.01) = 3, rounded up to a power of two
    assert shards_for_size(10_000, 100) == 128
    assert parse_bytes("50G") == 50 << 30 and parse_bytes("512MiB") == 512 << 20 and parse_bytes("1000") == 1000
    with pytest.raises(ValueError):
        parse_bytes("lots")


def test_env_knob_and_default(monkeypatch, tmp_path):
    monkeypatch.delenv("DLCOT_SHARD_ABOVE_BYTES", raising=False)
    monkeypatch.delenv("DLCOT_SHARDS", raising=False)
    zone = LandingZoneResource(root=str(tmp_path))
    assert zone.shard_above_bytes is None and isinstance(zone.landing(), LocalLanding)  # laptop default: off
    monkeypatch.setenv("DLCOT_SHARD_ABOVE_BYTES", "2K")
    zone = LandingZoneResource(root=str(tmp_path))
    assert zone.shard_above_bytes == 2048 and isinstance(zone.landing(), ShardedLanding)


def test_threshold_splits_and_each_file_lands_once(tmp_path):
    root = tmp_path / "landing"
    size = sum(write_dump(root / T / f"f-{k:03d}.jsonl", f"t{k:03d}") for k in range(40))
    write_dump(root / "small" / "a.jsonl", "s000")
    landing = ShardedLanding(LocalLanding(root), {}, above_bytes=size // 5)  # 5 x the threshold -> 8 shards
    assert landing.shard_count(T) == 8 and landing.shard_count("small") == 1
    keys = [k for k in landing.teachers() if k.startswith(f"{T}~")]
    assert "small" in landing.teachers() and T not in landing.teachers()
    assert len(keys) > 4 and all(k.startswith(f"{T}~shard-00") for k in keys)
    files = [n for k in keys for _, n in landing.local_files(k)]
    assert sorted(files) == sorted(n for _, n in LocalLanding(root).local_files(T))  # each file exactly once
    # an explicit count above the size-based one wins; below it, the size-based one does
    assert ShardedLanding(LocalLanding(root), {T: 16}, above_bytes=size // 5).shard_count(T) == 16
    assert ShardedLanding(LocalLanding(root), {T: 2}, above_bytes=size // 5).shard_count(T) == 8
    assert ShardedLanding(LocalLanding(root), {T: 2}).shard_count(T) == 2  # no threshold: today's behaviour


def test_growth_doubles_n_reruns_only_changed_shards_and_shrink_keeps_n(tmp_path):
    by4 = names_by_shard4()
    s1 = [by4[0][0], by4[1][0]]  # unsharded at first
    s2 = [by4[2][0], by4[1][1]]  # N = 2: shard 0 = {s1[0], s2[0]}, shard 1 = {s1[1], s2[1]}
    s3 = [by4[3][0]]  # N = 4: shard 0 loses s2[0] to shard 2, shard 1 keeps both files, shard 3 is new
    root = tmp_path / "landing"
    size = write_dump(root / T / s1[0], "x000")
    write_dump(root / T / s1[1], "x001")
    zone = LandingZoneResource(root=str(root), shards={}, shard_above_bytes=int(size * 2.2))
    store = tmp_path / "store"
    with dg.instance_for_test() as instance:
        ticker = Ticker(instance, zone)
        assert ticker.tick() == ([T], [T])  # 2 files <= threshold: unsharded as before
        assert ticker.tick() == ([], [])

        # crossing the threshold: N = 2; the old unsharded key gets one empty run (its tables become 0 rows)
        write_dump(root / T / s2[0], "x002")
        write_dump(root / T / s2[1], "x003")
        added, runs = ticker.tick()
        assert added == [key(0), key(1)]
        assert runs == [T, key(0), key(1)]
        assert any(f"teacher {T!r} is sharded now" in w for w in ticker.warnings)  # the old key is called out
        assert zone.landing(instance.get_dynamic_partitions(teacher_partitions.name)).local_files(T) == []
        assert ticker.tick() == ([], [])

        # doubling: only the shard that lost a file re-runs, the untouched shard 1 does not, new shards are added
        write_dump(root / T / s3[0], "x004")
        added, runs = ticker.tick()
        assert added == [key(2), key(3)]
        assert runs == [key(0), key(2), key(3)]
        landing = zone.landing(instance.get_dynamic_partitions(teacher_partitions.name))
        assert landing.shard_count(T) == 4
        assert {k: sorted(n for _, n in landing.local_files(k)) for k in (key(0), key(1), key(2), key(3))} == {
            key(0): [s1[0]], key(1): sorted([s1[1], s2[1]]), key(2): [s2[0]], key(3): [s3[0]],
        }

        # shrinking: by size N would be 2 again; it stays 4, and the emptied shard 3 gets one empty run
        (root / T / s3[0]).unlink()
        added, runs = ticker.tick()
        assert (added, runs) == ([], [key(3)])
        landing = zone.landing(instance.get_dynamic_partitions(teacher_partitions.name))
        assert landing.shard_count(T) == 4 and ShardedLanding(LocalLanding(root), {}, int(size * 2.2)).shard_count(T) == 2
        assert ticker.tick() == ([], [])

        # raw_traces on the sensor's instance (its registered keys keep N = 4, so shard 3 is still valid): a shard
        # ingests exactly its own files; the old unsharded key and the emptied shard write empty tables, so the
        # union of the teacher's partitions counts no row twice (the file assignment above covers the rest)
        got = {}
        for k in (T, key(1), key(3)):
            res = dg.materialize(
                [raw_traces], partition_key=k, instance=instance,
                run_config={"ops": {"raw_traces": {"config": {"workers": 1}}}},
                resources={"landing_zone": zone, "tokenizer": TokenizerResource(),
                           "parquet_io_manager": ParquetIOManager(base_dir=str(store))},
            )
            assert res.success
            df = pl.read_parquet(store / "raw_traces" / f"{k}.parquet")
            got[k] = (df.height, sorted(df["source_file"].unique()))
        assert got == {T: (0, []), key(1): (6, sorted([s1[1], s2[1]])), key(3): (0, [])}


def test_unsharded_key_of_sharded_teacher_holds_nothing(tmp_path):
    root = tmp_path / "landing"
    for k in range(6):
        write_dump(root / T / f"f-{k:03d}.jsonl", f"t{k:03d}")
    landing = ShardedLanding(LocalLanding(root), {T: 2}, registered=[T])
    assert landing.superseded(T) and landing.runs_when_empty(T) and landing.listing(T) == []
    assert T in landing.teachers()  # still listed while registered, so the sensor empties it once
    assert not ShardedLanding(LocalLanding(root), {}, registered=[T]).superseded(T)  # unsharded: the whole teacher
    # a registered shard key alone keeps the teacher sharded (N never drops back to 1)
    assert ShardedLanding(LocalLanding(root), {}, registered=[key(0)]).shard_count(T) == 2
    assert ShardedLanding(LocalLanding(root), {}, registered=[key(5)]).shard_count(T) == 8
    with pytest.raises(ValueError, match="not a shard 9"):
        landing.local_files(key(9))
