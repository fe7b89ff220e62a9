"""Read teacher dumps (JSONL, JSON lists, Parquet) as a stream of record units.

A *unit* is one input record: a non-blank JSONL line, one element of a JSON
list, or one Parquet row. A file that yields no unit at all (empty, binary,
not JSON, unreadable) becomes a single unit with line 0 that carries the
error, so that "records read == kept + rejected" always holds and no file
disappears silently. Blank JSONL lines are not records and are skipped.

Lines are split on ``\\n`` only: U+2028/U+2029 inside JSON strings are data.
"""

from __future__ import annotations

import codecs
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from .normalize import RecordError
from .schema import RejectReason

JSONL_SUFFIXES = (".jsonl", ".ndjson")
JSON_SUFFIXES = (".json",)
PARQUET_SUFFIXES = (".parquet", ".pq")
DATA_SUFFIXES = JSONL_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES

SNIFF_BYTES = 8192
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class Unit:
    line: int  # 1-based line (JSONL) or record number (JSON list, Parquet); 0 = the whole file
    obj: Any = None
    error: RecordError | None = None
    excerpt: str | None = None


def is_data_file(path: str | Path) -> bool:
    return Path(str(path)).suffix.lower() in DATA_SUFFIXES


def _excerpt(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return text[:EXCERPT_CHARS]


def _file_error(reason: RejectReason, detail: str, excerpt: str | None = None) -> Unit:
    return Unit(line=0, error=RecordError(reason, detail), excerpt=excerpt)


def _looks_binary(head: bytes) -> bool:
    """NUL bytes, or mostly undecodable bytes. A few bad bytes are left to the per-line check."""
    if b"\x00" in head:
        return True
    bad = head.decode("utf-8", errors="replace").count("\ufffd")
    return bad > max(16, len(head) // 20)


def iter_jsonl(stream: IO[bytes]) -> Iterator[Unit]:
    head = stream.read(SNIFF_BYTES)
    if not head:
        yield _file_error(RejectReason.EMPTY_FILE, "file is empty")
        return
    if _looks_binary(head):
        yield _file_error(RejectReason.UNREADABLE_FILE, "binary content (NUL or non-UTF-8 bytes), not JSONL", _excerpt(head))
        return
    produced = False
    chained = io.BufferedReader(_Prepend(head, stream))  # type: ignore[arg-type]
    for lineno, raw in enumerate(chained, start=1):
        raw = raw.rstrip(b"\n").rstrip(b"\r")
        if not raw.strip():
            continue
        produced = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Unit(
                lineno,
                error=RecordError(RejectReason.UNDECODABLE_BYTES, f"invalid UTF-8 at byte {exc.start} of the line"),
                excerpt=_excerpt(raw),
            )
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Unit(
                lineno,
                error=RecordError(RejectReason.MALFORMED_JSON, f"{exc.msg} at column {exc.colno}"),
                excerpt=_excerpt(text),
            )
            continue
        except RecursionError:
            yield Unit(lineno, error=RecordError(RejectReason.MALFORMED_JSON, "JSON nested too deeply"), excerpt=_excerpt(text))
            continue
        except ValueError as exc:  # e.g. an integer literal longer than Python's int_max_str_digits
            yield Unit(lineno, error=RecordError(RejectReason.MALFORMED_JSON, f"unparsable JSON value: {exc}"[:300]), excerpt=_excerpt(text))
            continue
        yield Unit(lineno, obj=obj)
    if not produced:
        yield _file_error(RejectReason.EMPTY_FILE, "file has no records (only blank lines)")


class _Prepend(io.RawIOBase):
    """A raw stream that yields ``head`` and then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]):
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if len(self._head):
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(b))
        n = len(data)
        b[:n] = data
        return n


def iter_json(data: bytes) -> Iterator[Unit]:
    if not data.strip():
        yield _file_error(RejectReason.EMPTY_FILE, "file is empty")
        return
    if _looks_binary(data[:SNIFF_BYTES]):
        yield _file_error(RejectReason.UNREADABLE_FILE, "binary content (NUL or non-UTF-8 bytes), not JSON", _excerpt(data))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield _file_error(RejectReason.UNREADABLE_FILE, f"invalid UTF-8 at byte {exc.start}", _excerpt(data))
        return
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.count("\n") > 1:  # a JSONL file named .json
            yield from iter_jsonl(io.BytesIO(data))
            return
        yield _file_error(RejectReason.UNREADABLE_FILE, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", _excerpt(text))
        return
    except RecursionError:
        yield _file_error(RejectReason.UNREADABLE_FILE, "JSON nested too deeply")
        return
    except ValueError as exc:  # e.g. an integer literal longer than Python's int_max_str_digits
        yield _file_error(RejectReason.UNREADABLE_FILE, f"unparsable JSON value: {exc}"[:300], _excerpt(text))
        return
    if isinstance(obj, list):
        if not obj:
            yield _file_error(RejectReason.EMPTY_FILE, "JSON list is empty")
            return
        for i, item in enumerate(obj, start=1):
            yield Unit(i, obj=item)
    else:
        yield Unit(1, obj=obj)


STREAM_JSON_ABOVE = 64 << 20  # a JSON list file larger than this is read element by element
MAX_JSON_ELEMENT_CHARS = 256 << 20  # an element that does not decode within this many characters is malformed
_JSON_CHUNK = 1 << 20


def iter_json_stream(stream: IO[bytes]) -> Iterator[Unit]:
    """The elements of a large JSON list, one at a time, in memory bounded by the largest element.

    Bytes are decoded incrementally into a text window; ``json.JSONDecoder.raw_decode`` reads one element at the
    window's position. An element cut by the window's end fails to decode and is read again with a window that
    at least doubles. A syntax error inside the list ends the units (nothing after it can be delimited): the
    element at fault becomes one ``malformed_json`` unit, so every record read is still accounted for."""
    dec = codecs.getincrementaldecoder("utf-8")()
    decoder = json.JSONDecoder()
    state = {"buf": "", "pos": 0, "eof": False}

    def fill(nbytes: int) -> None:
        raw = stream.read(nbytes)
        if not raw:
            state["eof"] = True
        text = dec.decode(raw, final=not raw)
        state["buf"] = state["buf"][state["pos"]:] + text
        state["pos"] = 0

    def skip_ws() -> str | None:
        while True:
            buf, pos = state["buf"], state["pos"]
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            state["pos"] = pos
            if pos < len(buf):
                return buf[pos]
            if state["eof"]:
                return None
            fill(_JSON_CHUNK)

    n = 0
    try:
        fill(_JSON_CHUNK)
        if state["buf"].startswith("\ufeff"):
            state["pos"] = 1
        if skip_ws() != "[":
            yield _file_error(RejectReason.UNREADABLE_FILE, "not a JSON list")
            return
        state["pos"] += 1
        while True:
            c = skip_ws()
            if c == "]":
                if n == 0:
                    yield _file_error(RejectReason.EMPTY_FILE, "JSON list is empty")
                return
            if c is None:  # cut off after element n: the rest of the file is one unusable unit
                yield Unit(0, error=RecordError(RejectReason.MALFORMED_JSON, f"the JSON list is not closed (cut off after element {n})"))
                return
            if n > 0:
                if c != ",":
                    yield Unit(n + 1, error=RecordError(RejectReason.MALFORMED_JSON, f"expected ',' or ']' after element {n}"),
                               excerpt=_excerpt(state["buf"][state["pos"]:]))
                    return
                state["pos"] += 1
                c = skip_ws()
            if c is None:
                yield Unit(0, error=RecordError(RejectReason.MALFORMED_JSON, f"the JSON list is not closed (cut off after element {n})"))
                return
            want = _JSON_CHUNK
            while True:
                buf, pos = state["buf"], state["pos"]
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    if end < len(buf) or state["eof"]:
                        break
                    err = None  # a value that ends exactly at the window's end may go on (a number): read on
                except json.JSONDecodeError as exc:
                    err = exc
                except (RecursionError, ValueError) as exc:
                    yield Unit(n + 1, error=RecordError(RejectReason.MALFORMED_JSON, f"unparsable JSON element: {exc}"[:300]),
                               excerpt=_excerpt(buf[pos:]))
                    return
                if state["eof"] or len(buf) - pos > MAX_JSON_ELEMENT_CHARS:
                    msg = f"{err.msg} in element {n + 1}" if err else f"element {n + 1} is cut off"
                    yield Unit(n + 1, error=RecordError(RejectReason.MALFORMED_JSON, msg), excerpt=_excerpt(buf[pos:]))
                    return
                fill(max(want, len(buf) - pos))
                want *= 2
            n += 1
            state["pos"] = end
            yield Unit(n, obj=obj)
    except UnicodeDecodeError as exc:
        yield Unit(n + 1, error=RecordError(RejectReason.UNDECODABLE_BYTES, f"invalid UTF-8 in element {n + 1}: {exc.reason}"))


def peek_keys(path: Path) -> list[str] | None:
    """The field names of a data file's first record (a Parquet file's columns), or None if there is none."""
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        units = iter_json_stream_or_whole(path) if suffix in JSON_SUFFIXES else None
        if units is None:
            with open(path, "rb") as fh:
                for unit in iter_jsonl(fh):
                    return list(unit.obj) if isinstance(unit.obj, dict) else None
            return None
        for unit in units:
            return list(unit.obj) if isinstance(unit.obj, dict) else None
    except Exception:  # a file that cannot be read has no keys; ingestion reports it properly
        return None
    return None


def iter_json_stream_or_whole(path: Path) -> Iterator[Unit]:
    """A JSON file's units: element by element when it is a large list, else parsed whole."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
        big = path.stat().st_size > STREAM_JSON_ABOVE
        first = head.lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1]
        if big and first == b"[" and not _looks_binary(head):
            fh.seek(0)
            yield from iter_json_stream(fh)
            return
    yield from iter_json(path.read_bytes())


def iter_parquet(path: Path | IO[bytes]) -> Iterator[Unit]:
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several error types for corrupt files
        yield _file_error(RejectReason.UNREADABLE_FILE, f"not a readable Parquet file: {type(exc).__name__}: {exc}"[:500])
        return
    if frame.height == 0:
        yield _file_error(RejectReason.EMPTY_FILE, "Parquet file has no rows")
        return
    for i, row in enumerate(frame.iter_rows(named=True), start=1):
        yield Unit(i, obj=row)


def iter_units(path: Path) -> Iterator[Unit]:
    """Every record unit of one local file, in file order."""
    suffix = path.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            yield from iter_parquet(path)
        elif suffix in JSON_SUFFIXES:
            yield from iter_json_stream_or_whole(path)
        else:
            with open(path, "rb") as fh:
                yield from iter_jsonl(fh)
    except OSError as exc:
        yield _file_error(RejectReason.UNREADABLE_FILE, f"cannot read file: {exc.strerror or exc}")
