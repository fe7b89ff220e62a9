"""Laptop defaults for every location knob, overridable through the environment."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLES_LANDING = Path(__file__).resolve().parent.parent / "samples" / "landing"
SAMPLES_BENCHMARKS = Path(__file__).resolve().parent.parent / "samples" / "benchmarks"


def default_landing_dir() -> str:
    """``DLCOT_LANDING_DIR`` or the bundled sample traces."""
    return os.environ.get("DLCOT_LANDING_DIR") or str(SAMPLES_LANDING)


def default_storage_dir() -> str:
    """``DLCOT_STORAGE_DIR``, else ``$DAGSTER_HOME/storage``, else ``./.dlcot/storage``."""
    if os.environ.get("DLCOT_STORAGE_DIR"):
        return os.environ["DLCOT_STORAGE_DIR"]
    if os.environ.get("DAGSTER_HOME"):
        return str(Path(os.environ["DAGSTER_HOME"]) / "storage")
    return str(Path.cwd() / ".dlcot" / "storage")


def default_reprocess_cron() -> str:
    return os.environ.get("DLCOT_REPROCESS_CRON") or "0 3 * * *"


# --- deployment: where data lives and how steps run, all from the environment (see k8s/README.md) ---


def landing_location() -> str:
    """``DLCOT_LANDING_URL`` (``s3://bucket/prefix`` or a folder), else :func:`default_landing_dir`."""
    return os.environ.get("DLCOT_LANDING_URL") or default_landing_dir()


def storage_location() -> str:
    """``DLCOT_STORAGE_URL`` (``s3://bucket/prefix`` or a folder), else :func:`default_storage_dir`."""
    return os.environ.get("DLCOT_STORAGE_URL") or default_storage_dir()


def blob_location() -> str:
    """Checkpoints and LLM caches: ``DLCOT_BLOB_URL``, else ``<storage location>/_blobs``."""
    if os.environ.get("DLCOT_BLOB_URL"):
        return os.environ["DLCOT_BLOB_URL"]
    return storage_location().rstrip("/") + "/_blobs"


def s3_endpoint_url() -> str | None:
    """An S3-compatible endpoint: ``DLCOT_S3_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``; None = AWS."""
    for name in ("DLCOT_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def s3_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def scratch_dir() -> str | None:
    """Where S3 landing files are downloaded for ingestion: ``DLCOT_SCRATCH_DIR``, else the system temp dir."""
    return os.environ.get("DLCOT_SCRATCH_DIR") or None


def executor_kind() -> str:
    """``DLCOT_EXECUTOR``: ``k8s`` (one pod per step), ``multiprocess``, ``in_process``; empty = Dagster's default."""
    return (os.environ.get("DLCOT_EXECUTOR") or "").strip().lower()


def default_shards() -> dict[str, int]:
    """``DLCOT_SHARDS="qwq-32b=16,deepseek-r1=8"``: teachers split into that many shard partitions."""
    out: dict[str, int] = {}
    for item in (os.environ.get("DLCOT_SHARDS") or "").split(","):
        if item.strip():
            teacher, _, n = item.partition("=")
            try:
                out[teacher.strip()] = int(n)
            except ValueError:
                raise ValueError(f"DLCOT_SHARDS: {item!r} is not <teacher>=<number of shards>") from None
    return out


_BYTE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str, what: str = "size") -> int:
    """``"50G"`` -> 53687091200: an integer with an optional K/M/G/T suffix (powers of 1024, ``B``/``iB`` allowed)."""
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _BYTE_UNITS else ""
    try:
        value = float(raw[: len(raw) - len(unit)]) * _BYTE_UNITS[unit]
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a size such as 5000000000, 512M or 50G") from None
    if value < 1:
        raise ValueError(f"{what}: {text!r} must be at least one byte")
    return int(value)


def default_shard_above_bytes() -> int | None:
    """``DLCOT_SHARD_ABOVE_BYTES="50G"``: a teacher whose data files total more is split into shards; unset = off."""
    text = (os.environ.get("DLCOT_SHARD_ABOVE_BYTES") or "").strip()
    return parse_bytes(text, "DLCOT_SHARD_ABOVE_BYTES") if text else None
