"""SFT datasets out of corrected_traces (plain Python; never imports dagster).

* :mod:`.formats`: the targets (``jsonl`` | ``parquet`` | ``hf`` x ``messages`` | ``sharegpt``) and the rows;
* :mod:`.card`: the dataset card (``README.md``, Hub-style YAML header + Markdown);
* :mod:`.writer`: :func:`export_partition`, streaming a stored partition into a blob-store prefix.
"""

from .card import CARD_NAME, CardFacts, parse_card
from .formats import (
    CONTAINERS,
    REFERENCE_SOURCES,
    SHAREGPT_ROLES,
    STYLES,
    ExportError,
    ExportTarget,
    arrow_schema,
    to_arrow,
)
from .writer import (
    DEFAULT_EXPORT_BATCH,
    DEFAULT_SHARD_ROWS,
    ExportReport,
    export_partition,
    previous_files,
    stored_table,
)

#: bump when what an export writes changes (the asset's code_version)
EXPORT_VERSION = "export-1"

__all__ = [
    "CARD_NAME", "CONTAINERS", "DEFAULT_EXPORT_BATCH", "DEFAULT_SHARD_ROWS", "EXPORT_VERSION", "REFERENCE_SOURCES",
    "SHAREGPT_ROLES", "STYLES", "CardFacts", "ExportError", "ExportReport", "ExportTarget", "arrow_schema",
    "export_partition", "parse_card", "previous_files", "stored_table", "to_arrow",
]
