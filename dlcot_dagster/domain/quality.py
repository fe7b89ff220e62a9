"""Schema expectations for the trace tables, expressed with great-expectations.

great-expectations 1.x validates pandas frames, so Polars frames are converted
at this boundary (only the columns the expectations read). The results are
plain dicts, so any caller (a Dagster asset check, a script) can use them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import polars as pl

TEXT_COLUMNS = ("problem", "thinking", "reference_answer")


@dataclass(frozen=True)
class ExpectationOutcome:
    name: str
    success: bool
    unexpected_count: int
    examples: list = field(default_factory=list)
    #: the failing rows, named ``file:line id=<id>`` (or ``id=<id>`` without the location columns), up to 20
    rows: list[str] = field(default_factory=list)


def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    except Exception:  # older/newer layouts: progress bars are cosmetic
        pass
    return gx, ctx


ROW_COLUMNS = ("source_file", "source_line", "id")


def _row_name(where: dict) -> str:
    """``file:line id=<id>`` of one failing row (the columns of ``ROW_COLUMNS`` it has)."""
    loc = f"{where['source_file']}:{where['source_line']} " if "source_file" in where else ""
    rid = where.get("id")
    return f"{loc}id={'null' if rid is None or rid != rid else rid}"  # pandas turns a null id into NaN


def validate_raw_traces(traces: pl.DataFrame, max_raw_tokens: int) -> dict[str, ExpectationOutcome]:
    """Run the raw-trace expectations; keys: ``unique_ids``, ``non_empty_text``, ``token_bounds``.

    Token counts must lie in ``[1, max_raw_tokens]``: ingestion rejects a record only when it *exceeds* the
    ceiling, so a record of exactly ``max_raw_tokens`` is valid. Each outcome names its failing rows by
    ``source_file:source_line`` and id when the frame carries those columns (by id otherwise)."""
    gx, ctx = _context()
    where = [c for c in ROW_COLUMNS if c in traces.columns]
    cols = ["id", *TEXT_COLUMNS, "raw_tokens", *(c for c in where if c != "id")]
    pdf = traces.select(cols).to_pandas()
    # empty or whitespace-only text counts as empty
    for c in TEXT_COLUMNS:
        pdf[c] = pdf[c].fillna("").str.strip()
    batch = (
        ctx.data_sources.add_pandas("dlcot")
        .add_dataframe_asset("raw_traces")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": pdf})
    )
    E = gx.expectations
    groups: dict[str, list] = {
        "unique_ids": [E.ExpectColumnValuesToBeUnique(column="id"), E.ExpectColumnValuesToNotBeNull(column="id")],
        "non_empty_text": [E.ExpectColumnValueLengthsToBeBetween(column=c, min_value=1) for c in TEXT_COLUMNS],
        "token_bounds": [
            E.ExpectColumnValuesToBeBetween(
                column="raw_tokens", min_value=1, max_value=max_raw_tokens, strict_max=False
            )
        ],
    }
    suite = ctx.suites.add(gx.ExpectationSuite(name="raw_traces", expectations=[e for g in groups.values() for e in g]))
    result = batch.validate(suite, result_format={"result_format": "SUMMARY", "unexpected_index_column_names": where})
    by_conf = list(result.results)
    out: dict[str, ExpectationOutcome] = {}
    i = 0
    for name, exps in groups.items():
        rs = by_conf[i : i + len(exps)]
        i += len(exps)
        out[name] = ExpectationOutcome(
            name=name,
            success=all(r.success for r in rs),
            unexpected_count=sum(int(r.result.get("unexpected_count") or 0) for r in rs),
            examples=[x for r in rs for x in (r.result.get("partial_unexpected_list") or [])][:10],
            rows=list(
                dict.fromkeys(_row_name(w) for r in rs for w in (r.result.get("partial_unexpected_index_list") or []))
            )[:20],
        )
    return out
