"""Laptop defaults for every location knob, overridable through the environment."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLES_LANDING = Path(__file__).resolve().parent.parent / "samples" / "landing"


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
