"""SeenIds: the compact duplicate-id index of ingestion."""

from __future__ import annotations

from dlcot_dagster.domain.ingest.seen_ids import SeenIds


def test_first_sighting_and_repeats_name_the_first_file_and_line():
    s = SeenIds(capacity=8)
    assert s.first_seen("a", "one.jsonl", 1) is None
    assert s.first_seen("b", "one.jsonl", 2) is None
    assert s.first_seen("a", "two.jsonl", 7) == ("one.jsonl", 1)
    assert s.first_seen("a", "three.jsonl", 9) == ("one.jsonl", 1)  # always the first, never the latest
    assert s.first_seen("é\ud800", "two.jsonl", 3) is None  # a lone surrogate is still an id
    assert s.first_seen("é\ud800", "x", 1) == ("two.jsonl", 3)
    assert len(s) == 3


def test_growth_keeps_every_id_and_its_place_within_a_few_bytes_each():
    s = SeenIds(capacity=8)
    n = 200_000
    for i in range(n):
        assert s.first_seen(f"id-{i}", f"file-{i % 7}.jsonl", i + 1) is None  # no false repeat among distinct ids
    assert len(s) == n and s.capacity >= 2 * n
    assert s.nbytes == 24 * s.capacity  # 24 bytes per slot
    assert s.nbytes / n <= 96  # between a quarter and a half of the slots in use
    for i in (0, 1, 4095, 4096, 123_457, n - 1):
        assert s.first_seen(f"id-{i}", "later.jsonl", 1) == (f"file-{i % 7}.jsonl", i + 1)
    assert len(s) == n
