"""Request traces: read public and recorded arrival traces into one columnar table.

A trace is a list of requests, each with an arrival time and its input and output token
counts. Readers cover the Azure LLM inference trace (``TIMESTAMP,ContextTokens,
GeneratedTokens``), any CSV and any JSON-lines file; a column mapping names the file's
columns, and the common names used by other simulators are recognised without one. A
JSON-lines trace may also give each request its prompt's prefix-block hashes (a list of
integers, as KV-cache traces such as Mooncake's ``hash_ids`` do): the optional ``blocks`` field.
Any trace may name each request's session (conversation): the optional ``session`` field, any
string or integer id, so that a replay can send a session's requests closed-loop.
"""

from __future__ import annotations

import csv
import gzip
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import TraceError

REQUIRED = ("timestamp", "input_tokens", "output_tokens")
FIELDS = (*REQUIRED, "blocks", "session")  # optional: blocks (JSON lines only), session
KNOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "TIMESTAMP",
        "arrived_at",
        "arrival_timestamp",
        "arrival_time",
        "timestamp",
        "t",
        "arrival",  # swarmsim recordings (simulate --trace-out, live run --record)
    ),
    "input_tokens": (
        "ContextTokens",
        "num_prefill_tokens",
        "input_length",  # Mooncake
        "prompt_size",
        "input_tokens",
        "prompt_tokens",
    ),
    "output_tokens": (
        "GeneratedTokens",
        "num_decode_tokens",
        "output_length",  # Mooncake
        "token_size",
        "output_tokens",
        "completion_tokens",
    ),
    "blocks": ("hash_ids", "blocks", "block_hashes"),
    "session": ("session", "session_id", "conversation_id", "chat_id"),
}
AZURE_COLUMNS = {
    "timestamp": "TIMESTAMP",
    "input_tokens": "ContextTokens",
    "output_tokens": "GeneratedTokens",
}
FORMATS = ("auto", "azure-llm", "csv", "jsonl")
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}  # a trace's numeric timestamps, in seconds
# auto: seconds unless that makes a trace of whole-number times implausibly slow; then the
# first smaller unit whose mean rate is plausible for LLM serving (requests per second)
SLOW_RATE, FAST_RATE = 0.05, 10_000.0


@dataclass(frozen=True, eq=False)
class TraceTable:
    """Requests sorted by arrival: ``t`` in seconds (float64) from the first request, or from
    the start of a window, and token counts (int64). Readers sort out-of-order files stably by
    time, so rows with equal times keep their file order; eq=False as the fields are arrays.
    ``blocks`` holds each request's prefix-block hashes and ``sessions`` its session (numbered
    0, 1, ... in order of first appearance in the file) when the trace has them."""

    t: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    path: str
    blocks: tuple[tuple[int, ...], ...] | None = None
    sessions: np.ndarray | None = None  # int64 session numbers

    def _rows(self, t: np.ndarray, rows: np.ndarray | slice) -> TraceTable:
        """The table of ``rows`` with times ``t``."""
        blocks = None
        if self.blocks is not None:
            index = range(len(self))[rows] if isinstance(rows, slice) else rows.tolist()
            blocks = tuple(self.blocks[i] for i in index)
        sessions = None if self.sessions is None else self.sessions[rows]
        inputs, outputs = self.input_tokens[rows], self.output_tokens[rows]
        return TraceTable(t, inputs, outputs, self.path, blocks, sessions)

    def __len__(self) -> int:
        return len(self.t)

    @property
    def duration_s(self) -> float:
        """Seconds from time 0 to the last arrival."""
        return float(self.t[-1]) if len(self.t) else 0.0

    @property
    def mean_rate(self) -> float:
        """Arrivals per second over ``duration_s`` (0 for a table spanning no time)."""
        return len(self) / self.duration_s if self.duration_s > 0 else 0.0

    def window(self, start_s: float, end_s: float | None = None) -> TraceTable:
        """Rows with ``start_s <= t < end_s`` (no end if None), times re-based so start_s is 0."""
        lo = np.searchsorted(self.t, start_s, side="left")
        hi = len(self.t) if end_s is None else np.searchsorted(self.t, end_s, side="left")
        rows = slice(lo, max(lo, hi))
        return self._rows(self.t[rows] - start_s, rows)

    def scaled(self, time_scale: float) -> TraceTable:
        """The same requests with times multiplied by ``time_scale`` (0.5 replays twice as fast)."""
        inputs, outputs, path = self.input_tokens, self.output_tokens, self.path
        return TraceTable(self.t * time_scale, inputs, outputs, path, self.blocks, self.sessions)

    def rate_scaled(self, factor: float) -> TraceTable:
        """About ``factor`` times the requests at the same times: thinned below 1, repeated
        above. Row ``i`` is kept ``floor((i + 1) f) - floor(i f)`` times, deterministically and
        evenly, so the trace's bursts keep their shape (scaling time would stretch them)."""
        i = np.arange(len(self))
        copies = (np.floor((i + 1) * factor) - np.floor(i * factor)).astype(np.int64)
        rows = np.repeat(i, copies)
        return self._rows(self.t[rows], rows)


def read_trace(
    path: str | Path, format: str = "auto", columns: Mapping[str, str] | None = None
) -> TraceTable:
    """Read a trace in ``format``; "auto" picks by extension, then by the first line. A
    ``columns`` mapping also overrides the Azure column names."""
    path = Path(path)
    if format == "auto":
        format = _detect(path)
    if format == "azure-llm":
        return read_csv(path, columns or AZURE_COLUMNS)
    if format == "csv":
        return read_csv(path, columns)
    if format == "jsonl":
        return read_jsonl(path, columns)
    raise TraceError(str(path), f"unknown trace format {format!r}; expected one of {FORMATS}")


def read_azure_llm(path: str | Path) -> TraceTable:
    """Read the Azure LLM inference trace format (``TIMESTAMP,ContextTokens,GeneratedTokens``)."""
    return read_csv(path, AZURE_COLUMNS)


def read_csv(path: str | Path, columns: Mapping[str, str] | None = None) -> TraceTable:
    """Read a CSV trace with a header row; ``columns`` maps our fields to its column names."""
    name = str(path)
    with _open(path) as f:
        reader = csv.reader(f)
        header = next((row for row in reader if row), None)
        if header is None:
            raise TraceError(name, "empty file: expected a header row and data rows")
        header_line = reader.line_num
        found = _resolve(name, header, columns, header_line)
        if "blocks" in found:
            raise TraceError(name, "prefix-block hashes (blocks) need a JSON-lines trace")
        index = {field: header.index(c) for field, c in found.items()}
        rows: list[list[str]] = []
        lines: list[int] = []
        for row in reader:
            if row:
                rows.append(row)
                lines.append(reader.line_num)
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(header):
            msg = f"expected {len(header)} fields as in the header, got {len(row)}"
            raise TraceError(name, msg, line)
    by_column = list(zip(*rows, strict=True)) or [()] * len(header)
    values = {field: list(by_column[i]) for field, i in index.items()}
    return _table(name, values, lines)


def read_jsonl(path: str | Path, columns: Mapping[str, str] | None = None) -> TraceTable:
    """Read a JSON-lines trace (one object per line); ``columns`` maps our fields to its keys.
    A swarmsim recording reads as is: its queries' arrivals and tokens, its events skipped."""
    name = str(path)
    values: dict[str, list[Any]] = {}
    lines: list[int] = []
    keys: dict[str, str] | None = None
    with _open(path) as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            record = _json_object(name, text, number)
            if "event" in record:  # a swarmsim recording's lifecycle row: not a request
                continue
            if keys is None:
                keys = _resolve(name, list(record), columns, number)
                values = {field: [] for field in keys}
            for field, key in keys.items():
                if key not in record:
                    msg = f"missing key {key!r}; keys present: {', '.join(record)}"
                    raise TraceError(name, msg, number)
                values[field].append(record[key])
            lines.append(number)
    return _table(name, values, lines)


def _open(path: str | Path) -> IO[str]:
    """Open a text trace, gunzipping ``*.gz`` and dropping a UTF-8 byte-order mark."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _detect(path: Path) -> str:
    """The format of ``path``: JSON lines by extension or a leading ``{``, Azure by its header."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    with _open(path) as f:
        first = next((line.strip() for line in f if line.strip()), "")
    if (suffixes and suffixes[-1] in (".jsonl", ".ndjson")) or first.startswith("{"):
        return "jsonl"
    header = [c.strip() for c in first.split(",")]
    return "azure-llm" if header == list(AZURE_COLUMNS.values()) else "csv"


def _resolve(
    path: str, present: Sequence[str], columns: Mapping[str, str] | None, line: int
) -> dict[str, str]:
    """The file's column name for each field: timestamp, input and output tokens, then the
    optional blocks and session columns the file has (or the mapping names)."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise TraceError(path, f"columns: unknown fields {unknown}; expected some of {FIELDS}")
    lowered = {c.strip().lower(): c for c in present}
    found = {}
    for field in FIELDS:
        wanted = (columns[field],) if field in columns else KNOWN_COLUMNS[field]
        match = next((lowered[w.lower()] for w in wanted if w.lower() in lowered), None)
        if match is None and field not in REQUIRED and field not in columns:
            continue
        if match is None:
            msg = (
                f"no {field} column (looked for {', '.join(wanted)}); present: {', '.join(present)}"
            )
            raise TraceError(path, msg, line)
        found[field] = match
    return found


def _json_object(path: str, text: str, line: int) -> dict[str, Any]:
    """Parse one JSON-lines record, which must be an object."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise TraceError(path, f"invalid JSON: {err.msg}", line) from None
    if not isinstance(record, dict):
        raise TraceError(path, f"expected a JSON object, got {type(record).__name__}", line)
    return record


def _table(path: str, values: Mapping[str, list[Any]], lines: list[int]) -> TraceTable:
    """Convert parsed columns (by field) into a sorted, zero-based TraceTable."""
    if not lines:
        raise TraceError(path, "no data rows: the trace is empty")
    times = _times(path, values["timestamp"], lines)
    inputs = _counts(path, values["input_tokens"], lines, "input token count")
    outputs = _counts(path, values["output_tokens"], lines, "output token count")
    blocks = _blocks(path, values["blocks"], lines) if "blocks" in values else None
    sessions = _sessions(path, values["session"], lines) if "session" in values else None
    table = TraceTable(times, inputs, outputs, path, blocks, sessions)
    if np.any(times[1:] < times[:-1]):
        order = np.argsort(times, kind="stable")
        table = table._rows(times[order], order)
    return table.window(float(table.t[0]))


def _blocks(path: str, values: list[Any], lines: list[int]) -> tuple[tuple[int, ...], ...]:
    """Each row's prefix-block hashes: a list of integers, naming the line of a bad one."""
    out = []
    for value, line in zip(values, lines, strict=True):
        ok = isinstance(value, list) and all(
            isinstance(h, int) and not isinstance(h, bool) for h in value
        )
        if not ok:
            raise TraceError(path, f"blocks {value!r} is not a list of integers", line)
        out.append(tuple(value))
    return tuple(out)


def _sessions(path: str, values: list[Any], lines: list[int]) -> np.ndarray:
    """Each row's session, numbered by first appearance; ids are strings or integers."""
    numbers: dict[Any, int] = {}
    out = []
    for value, line in zip(values, lines, strict=True):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TraceError(path, f"session {value!r} is not a string or an integer", line)
        out.append(numbers.setdefault(value, len(numbers)))
    return np.array(out, dtype=np.int64)


def _times(path: str, values: list[Any], lines: list[int]) -> np.ndarray:
    """Arrival times in seconds: numeric seconds, or datetimes parsed exactly to nanoseconds."""
    if _is_number(values[0]):
        return _numbers(path, values, lines, "timestamp")
    try:
        stamps = _datetimes(values)
    except ValueError:
        stamps = np.array([_datetime(path, v, line) for v, line in zip(values, lines, strict=True)])
    bad = np.flatnonzero(np.isnat(stamps))
    if len(bad):
        raise TraceError(path, f"unparseable timestamp {values[bad[0]]!r}", lines[bad[0]])
    ns = (stamps - stamps.min()).astype(np.int64)
    seconds: np.ndarray = ns / 1e9
    return seconds


def _datetimes(values: list[Any]) -> np.ndarray:
    """Parse datetime strings to datetime64[ns]; explicit UTC offsets are applied."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # numpy notes it converted an offset to UTC
        return np.array(values, dtype="datetime64[ns]")


def _datetime(path: str, value: Any, line: int) -> np.datetime64:
    """Parse one datetime, naming its line when it cannot be parsed."""
    try:
        stamp: np.datetime64 = _datetimes([value])[0]
        return stamp
    except (TypeError, ValueError):
        raise TraceError(path, f"unparseable timestamp {value!r}", line) from None


def _is_number(value: Any) -> bool:
    """Whether a timestamp is numeric seconds rather than a datetime."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _numbers(path: str, values: list[Any], lines: list[int], what: str) -> np.ndarray:
    """Finite floats, naming the line of the first value that is not one."""
    try:
        numbers = np.array(list(map(float, values)))
    except (TypeError, ValueError):
        value, line = next((v, n) for v, n in zip(values, lines, strict=True) if not _is_number(v))
        raise TraceError(path, f"{what} {value!r} is not a number", line) from None
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        raise TraceError(path, f"{what} {values[bad[0]]!r} is not finite", lines[bad[0]])
    return numbers


def _counts(path: str, values: list[Any], lines: list[int], what: str) -> np.ndarray:
    """Non-negative integer token counts, naming the line of the first bad one."""
    numbers = _numbers(path, values, lines, what)
    bad = np.flatnonzero((numbers < 0) | (numbers != np.round(numbers)))
    if len(bad):
        msg = f"{what} {values[bad[0]]!r} is not a non-negative integer"
        raise TraceError(path, msg, lines[bad[0]])
    return numbers.astype(np.int64)


def guess_time_unit(table: TraceTable) -> str:
    """The unit of ``table``'s raw (unscaled) timestamps: ``s``, unless the times are whole
    numbers and read as seconds they give fewer than SLOW_RATE requests/s while ``ms`` (else
    ``us``) gives a rate in [SLOW_RATE, FAST_RATE]. A Mooncake trace (23,608 requests over
    3.6 million ms) is ms; a trace of datetimes, already in seconds, stays s."""
    if len(table) < 2 or table.duration_s <= 0 or not bool(np.all(table.t == np.round(table.t))):
        return "s"
    rate = (len(table) - 1) / (table.duration_s - float(table.t[0]) or table.duration_s)
    if rate >= SLOW_RATE:
        return "s"
    for unit in ("ms", "us"):
        if SLOW_RATE <= rate / TIME_UNITS[unit] <= FAST_RATE:
            return unit
    return "s"


def describe(table: TraceTable) -> str:
    """``12,031 requests over 58.9 min, 3.4 req/s``: what was read, so a wrong unit shows."""
    span = table.duration_s - (float(table.t[0]) if len(table) else 0.0)
    if span >= 7200:
        length = f"{span / 3600:.1f} h"
    elif span >= 120:
        length = f"{span / 60:.1f} min"
    else:
        length = f"{span:.1f} s"
    rate = f"{(len(table) - 1) / span:.3g} req/s" if span > 0 else "all at once"
    return f"{len(table):,} requests over {length}, {rate}"
