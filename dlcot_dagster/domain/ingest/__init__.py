"""Stage 1, ingestion: teacher dumps as they come -> normalized traces + rejects (plain Python, no Dagster).

Modules:

``readers``   record units of JSONL / JSON (list or object) / Parquet files
``formats``   the dataset layouts (field sets and value shapes of the public long-CoT corpora), one row ->
              one or more generations, per-generation flags, teacher column groups
``normalize`` one generation -> problem, thinking, final response (think tags, begin_of_thought, messages, ...)
``references`` the reference answer of each trace: given / extracted / joined / majority / self
``sources``   ``SourceSpec``: the field mapping of a ``dlcot_source.yaml``
``schema``    ``TraceRecord`` / ``RejectRecord`` and their Polars schemas
``seen_ids``  the compact duplicate-id index
``core``      ``iter_outcomes`` / ``ingest_files``: one outcome per generation, accounting

The names below are the stable import path (``from dlcot_dagster.domain.ingest import ingest_path``).
"""

from .core import (
    DEFAULT_MAX_RAW_TOKENS,
    SPEC_FILENAME,
    FileStats,
    IngestResult,
    accounting_problems,
    reference_source_report,
    ingest_files,
    ingest_folder,
    ingest_path,
    iter_outcomes,
    list_data_files,
    load_spec,
    named_files,
)
from .readers import iter_units

__all__ = [
    "DEFAULT_MAX_RAW_TOKENS",
    "SPEC_FILENAME",
    "FileStats",
    "IngestResult",
    "accounting_problems",
    "reference_source_report",
    "ingest_files",
    "ingest_folder",
    "ingest_path",
    "iter_outcomes",
    "iter_units",
    "list_data_files",
    "load_spec",
    "named_files",
]
