"""Dataset parsing shared by the API, the CLI and the workers: JSONL, Parquet or JSON records -> samples.

Three record layouts map onto one native sample (the layout is remembered so exports can answer in kind):

- native: ``{"id", "instruction", "input"?, "response", "refinements"?: [{"teacher", "response",
  "instruction"?, "input"?}]}``
- alpaca: like native but the answer is in ``output`` (refinements may use ``output`` too)
- chat: ``{"id", "messages": [{"role", "content"}...], "refinements"?}``: the instruction is the user turn
  just before the final assistant turn, the response is that assistant turn; a leading system turn is kept
  in the record but not scored. Refinements give ``response`` (and optionally ``instruction``) or their
  own ``messages``.

A refinement's missing ``instruction`` and ``input`` are taken from its sample. Every error names the
record (1-based line, row or sample number) and the field, and nothing is returned unless all records pass:
a job is created whole or not at all. `iter_dataset` is the streaming reader of big files (service.jobs.ingest):
the same records and errors, yielded one at a time in bounded memory (duplicate ids are left to its caller).
Size limits (`Limits`: records, bytes per record, candidates per sample, characters per text, JSON depth, bytes
after gzip decompression) raise `LimitError`, which names the limit and its setting. JSONL may be
gzip-compressed; it is decompressed under the byte limit, so a compressed bomb stops at the limit instead of
filling memory. Torch-free and workers-free on purpose: the API imports this (`workers.curation.candidates_of`
turns `candidate_texts` into the engine's `Candidate`s).
"""

from __future__ import annotations

import io
import json
import os
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Literal

from core.errors import InputError

Layout = Literal["native", "alpaca", "chat"]
DatasetFormat = Literal["jsonl", "parquet"]

# The name of the sample's own candidate; a teacher may not take it, or candidates would collide.
ORIGINAL = "original"


class DatasetError(InputError):
    """A dataset that cannot be used as-is, with where (record number, field) it went wrong."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None, unit: str = "line"):
        self.line = line
        self.reason = message
        where = []
        if line is not None:
            where.append(f"{unit} {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message, field=field)


class LimitError(DatasetError):
    """A dataset over one of the configured size limits; `limit` is the setting that sets it."""

    def __init__(
        self, message: str, *, limit: str, line: int | None = None, field: str | None = None, unit: str = "line"
    ):
        self.limit = limit
        super().__init__(f"{message} (limit: {limit})", line=line, field=field, unit=unit)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one dataset may hold; each field maps to the setting `FRONTIER_<FIELD>` (service.settings)."""

    max_records: int = 1_000_000
    max_record_bytes: int = 4 * 1024 * 1024
    max_candidates_per_sample: int = 64
    max_text_chars: int = 1_000_000
    max_json_depth: int = 32
    max_dataset_bytes: int = 4 * 1024 * 1024 * 1024

    @staticmethod
    def setting(name: str) -> str:
        """The environment variable of a limit, for error messages."""
        return f"FRONTIER_{name.upper()}"


DEFAULT_LIMITS = Limits()
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = b"\xef\xbb\xbf"
# Streaming reads: file blocks, compressed input per inflate, and the rows of one decoded Parquet batch.
STREAM_BLOCK = 1024 * 1024
GZIP_INPUT_BLOCK = 64 * 1024
PARQUET_BATCH_ROWS = 1024


@dataclass(frozen=True, slots=True)
class Refinement:
    """One teacher's rewrite of a sample; None fields fall back to the sample's own."""

    teacher: str
    response: str
    instruction: str | None = None
    input: str | None = None


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One parsed sample in the native layout, with its source layout and record for layout-true exports."""

    id: str
    instruction: str
    input: str
    response: str
    refinements: list[Refinement] = field(default_factory=list)
    layout: Layout = "native"
    line: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    # The record's JSON text as read, when the reader kept it (streaming JSONL): stored as is, not re-encoded.
    text: str | None = field(default=None, repr=False, compare=False)

    @property
    def teachers(self) -> list[str]:
        """The teachers that refined this sample, in record order."""
        return [refinement.teacher for refinement in self.refinements]


@dataclass(frozen=True, slots=True)
class CandidateText:
    """One candidate's texts as the student will see them: the original or one teacher's refinement."""

    name: str
    teacher: str | None
    instruction: str
    input: str
    response: str


def candidate_texts(record: SampleRecord) -> list[CandidateText]:
    """Every candidate of a sample, the original first; a refinement inherits the fields it leaves out."""
    return [CandidateText(*row) for row in candidate_rows(record)]


def candidate_rows(record: SampleRecord) -> list[tuple[str, str | None, str, str, str]]:
    """candidate_texts as plain (name, teacher, instruction, input, response) tuples: what bulk stores write."""
    rows: list[tuple[str, str | None, str, str, str]] = [
        (ORIGINAL, None, record.instruction, record.input, record.response)
    ]
    for refinement in record.refinements:
        rows.append(
            (
                refinement.teacher,
                refinement.teacher,
                refinement.instruction if refinement.instruction is not None else record.instruction,
                refinement.input if refinement.input is not None else record.input,
                refinement.response,
            )
        )
    return rows


def parse_jsonl(data: bytes | BinaryIO | Path, *, limits: Limits = DEFAULT_LIMITS) -> list[SampleRecord]:
    """Parse a JSONL dataset (one JSON object per line; blank lines ignored), gzip-compressed or not."""
    raw = _read_bytes(data)
    if raw.startswith(GZIP_MAGIC):
        raw = _gunzip(raw, limits)
    elif len(raw) > limits.max_dataset_bytes:
        raise LimitError(f"the dataset is {len(raw):,} bytes", limit=Limits.setting("max_dataset_bytes"))
    if raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    if not raw.strip():
        raise DatasetError("the file is empty: expected one JSON object per line")
    return _validate_all(jsonl_objects(raw, limits), unit="line", limits=limits)


def parse_parquet(data: bytes | BinaryIO | Path, *, limits: Limits = DEFAULT_LIMITS) -> list[SampleRecord]:
    """Parse a Parquet dataset whose columns follow one of the record layouts (one row per sample)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = _read_bytes(data)
    if not raw:
        raise DatasetError("the file is empty: expected a Parquet file")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(raw))
        # Checked from the footer, before any row is decoded.
        if parquet.metadata.num_rows > limits.max_records:
            raise LimitError(
                f"the file has {parquet.metadata.num_rows:,} rows, over {limits.max_records:,}",
                limit=Limits.setting("max_records"),
            )
        table = parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"not a readable Parquet file: {exc}") from exc
    if table.num_rows == 0:
        raise DatasetError("the Parquet file has no rows")
    if table.nbytes > limits.max_dataset_bytes:
        raise LimitError(f"the decoded table is {table.nbytes:,} bytes", limit=Limits.setting("max_dataset_bytes"))
    rows: list[dict[str, Any]] = table.to_pylist()
    return _validate_all(((index + 1, row) for index, row in enumerate(rows)), unit="row", limits=limits)


def parse_records(records: Sequence[object], *, limits: Limits = DEFAULT_LIMITS) -> list[SampleRecord]:
    """Validate already-decoded records (a JSON body's `samples`), numbered from 1."""
    if not records:
        raise DatasetError("no samples given")
    return _validate_all(((index + 1, record) for index, record in enumerate(records)), unit="sample", limits=limits)


def parse_dataset(
    data: bytes | BinaryIO | Path,
    *,
    fmt: DatasetFormat | None = None,
    name: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> list[SampleRecord]:
    """Parse JSONL (optionally gzip) or Parquet, choosing by `fmt`, else by file name, else by magic bytes."""
    raw = _read_bytes(data)
    fmt = fmt or detect_format(name, raw[:4])
    return parse_parquet(raw, limits=limits) if fmt == "parquet" else parse_jsonl(raw, limits=limits)


def detect_format(name: str, head: bytes) -> DatasetFormat:
    """A dataset's format by its file name, else by its first bytes (Parquet's magic), else JSONL."""
    lowered = name.lower().removesuffix(".gz")
    if lowered.endswith((".parquet", ".pq")) or (head[:4] == PARQUET_MAGIC and not lowered.endswith(".jsonl")):
        return "parquet"
    return "jsonl"


def record_unit(fmt: DatasetFormat) -> str:
    """What a format's records are numbered by in errors: JSONL lines or Parquet rows."""
    return "row" if fmt == "parquet" else "line"


def iter_dataset(
    path: Path,
    *,
    fmt: DatasetFormat | None = None,
    name: str = "",
    limits: Limits = DEFAULT_LIMITS,
    skip: int = 0,
) -> Generator[SampleRecord, None, None]:
    """Stream a dataset file's records in bounded memory: JSONL line by line (gzip found by its magic bytes and
    inflated as it is read), Parquet a batch of rows at a time within each row group.

    Each record is validated as parse_dataset validates it, with the same errors (record number, field, the limit
    and its setting), raised when the reader gets there: the records before a bad one have been yielded already.
    Duplicate ids are not checked here (that needs every id seen so far: the caller's store catches them, and
    `duplicate_id_error` words them). The first `skip` records are counted (limits, line numbers) but neither
    validated nor yielded: a read resumed after them. The format is `fmt`, else decided as parse_dataset does
    from `name` (default: the file's name) and the first bytes.
    """
    fmt = fmt or sniff_file(path, name)
    if fmt == "parquet":
        yield from _iter_parquet(path, limits, skip)
        return
    texts = _jsonl_texts(path, limits)
    skipped = sum(1 for _ in islice(texts, skip))
    objects = ((number, _json_value(text, number, limits), text) for number, text in texts)
    yield from _validate_each(objects, unit="line", limits=limits, start=skipped)


def sniff_file(path: Path, name: str = "") -> DatasetFormat:
    """The format of a dataset file, by `name` (default: the file's own name), else by its first bytes."""
    with path.open("rb") as handle:
        return detect_format(name or path.name, handle.read(4))


def record_line(path: Path, ordinal: int, *, fmt: DatasetFormat, limits: Limits = DEFAULT_LIMITS) -> int:
    """The line (JSONL) or row (Parquet) of the dataset's record number `ordinal` (0-based), read afresh."""
    if fmt == "parquet":
        return ordinal + 1
    for count, (number, _) in enumerate(_jsonl_texts(path, limits)):
        if count == ordinal:
            return number
    raise DatasetError(f"the dataset has no record {ordinal + 1}")


def _jsonl_texts(path: Path, limits: Limits) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a JSONL file, gzip or not, read a line at a time.

    A line is never read past `max_record_bytes` (+1, to know it is over), and gzip data never inflated past
    `max_dataset_bytes`, so memory stays bounded whatever the file holds.
    """
    bound = limits.max_record_bytes
    with path.open("rb", buffering=STREAM_BLOCK) as handle:
        gzipped = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        stream: BinaryIO
        if gzipped:
            stream = io.BufferedReader(_GunzipStream(handle, limits), STREAM_BLOCK)
        else:
            size = os.fstat(handle.fileno()).st_size
            if size > limits.max_dataset_bytes:
                raise LimitError(f"the dataset is {size:,} bytes", limit=Limits.setting("max_dataset_bytes"))
            stream = handle
        number, saw_content, found = 0, False, False
        while line := stream.readline(bound + 1):
            number += 1
            if line.endswith(b"\n"):
                line = line[:-1]
            elif len(line) > bound:
                raise LimitError(
                    f"the line is longer than {bound:,} bytes",
                    limit=Limits.setting("max_record_bytes"),
                    line=number,
                )
            if number == 1 and line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM) :]
            saw_content = saw_content or bool(line.strip())
            text = _line_text(line, number)
            if text is not None:
                found = True
                yield number, text
    if not found:
        raise DatasetError(
            "the file has no records" if saw_content else "the file is empty: expected one JSON object per line"
        )


class _GunzipStream(io.RawIOBase):
    """A gzip file (one member or several, as bgzip and pigz write) inflated as it is read, and refused as soon
    as its output passes `max_dataset_bytes`: a compressed bomb stops at the limit instead of filling memory."""

    def __init__(self, source: BinaryIO, limits: Limits) -> None:
        self._source = source
        self._limit = limits.max_dataset_bytes
        self._inflater = zlib.decompressobj(wbits=31)
        self._input = b""
        self._total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        while True:
            if self._inflater.eof:
                rest = self._inflater.unused_data or self._source.read(GZIP_INPUT_BLOCK)
                if not rest:
                    return 0
                self._inflater, self._input = zlib.decompressobj(wbits=31), rest
            data = self._inflater.unconsumed_tail or self._input or self._source.read(GZIP_INPUT_BLOCK)
            self._input = b""
            if not data:
                raise DatasetError("not a readable gzip file: the compressed data is truncated")
            try:
                out = self._inflater.decompress(data, size)
            except zlib.error as exc:
                raise DatasetError(f"not a readable gzip file: {exc}") from exc
            if out:
                self._total += len(out)
                if self._total > self._limit:
                    raise LimitError(
                        f"the dataset decompresses to more than {self._limit:,} bytes",
                        limit=Limits.setting("max_dataset_bytes"),
                    )
                buffer[: len(out)] = out
                return len(out)


def _iter_parquet(path: Path, limits: Limits, skip: int) -> Iterator[SampleRecord]:
    """A Parquet file's rows validated as records, decoded PARQUET_BATCH_ROWS rows at a time, row group by row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise DatasetError("the file is empty: expected a Parquet file")
    try:
        # No pre-buffering: it would read a whole row group's column chunks (often the whole file) up front.
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=STREAM_BLOCK)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"not a readable Parquet file: {exc}") from exc
    with parquet:
        metadata = parquet.metadata
        # Checked from the footer, before any row is decoded.
        if metadata.num_rows > limits.max_records:
            raise LimitError(
                f"the file has {metadata.num_rows:,} rows, over {limits.max_records:,}",
                limit=Limits.setting("max_records"),
            )
        if metadata.num_rows == 0:
            raise DatasetError("the Parquet file has no rows")
        # A resumed read starts at the row group holding record `skip`.
        first_group, skipped = 0, 0
        while first_group < metadata.num_row_groups and skipped + metadata.row_group(first_group).num_rows <= skip:
            skipped += metadata.row_group(first_group).num_rows
            first_group += 1
        rows = _parquet_rows(parquet, range(first_group, metadata.num_row_groups), skipped, limits)
        numbered = ((number, row, None) for number, row in rows if number > skip)
        yield from _validate_each(numbered, unit="row", limits=limits, start=min(skip, metadata.num_rows))


def _parquet_rows(parquet: Any, groups: range, before: int, limits: Limits) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) of the given row groups, numbered after `before` rows; decoded bytes are limited."""
    import pyarrow as pa

    batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=list(groups), use_threads=False)
    number, decoded = before, 0
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as exc:
            raise DatasetError(f"not a readable Parquet file: {exc}") from exc
        if batch is None:
            return
        decoded += batch.nbytes
        if decoded > limits.max_dataset_bytes:
            raise LimitError(
                f"the decoded table is more than {limits.max_dataset_bytes:,} bytes",
                limit=Limits.setting("max_dataset_bytes"),
            )
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _gunzip(raw: bytes, limits: Limits) -> bytes:
    """Decompress gzip data (every member), stopping as soon as the output would pass `max_dataset_bytes`."""
    with io.BufferedReader(_GunzipStream(io.BytesIO(raw), limits), STREAM_BLOCK) as stream:
        return stream.read()


def _read_bytes(data: bytes | BinaryIO | Path) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, Path):
        return data.read_bytes()
    return data.read()


def jsonl_objects(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Iterator[tuple[int, object]]:
    """(line number, decoded JSON) of each non-blank JSONL line; errors name the line (and the limit crossed)."""
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if len(line) > limits.max_record_bytes:
            raise LimitError(
                f"the line is {len(line):,} bytes, over {limits.max_record_bytes:,}",
                limit=Limits.setting("max_record_bytes"),
                line=number,
            )
        text = _line_text(line, number)
        if text is not None:
            yield number, _json_value(text, number, limits)


def _line_text(line: bytes, number: int) -> str | None:
    """A JSONL line as text, None when blank; NUL bytes and invalid UTF-8 are errors naming the line."""
    if b"\x00" in line:
        raise DatasetError("contains a NUL byte", line=number)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"invalid UTF-8 at byte offset {exc.start}", line=number) from exc
    return text if text.strip() else None


def _json_value(text: str, number: int, limits: Limits) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON: {exc.msg} (column {exc.colno})", line=number) from exc
    except RecursionError as exc:
        raise LimitError(
            f"JSON nested deeper than {limits.max_json_depth} levels",
            limit=Limits.setting("max_json_depth"),
            line=number,
        ) from exc


def _depth(value: object) -> int:
    """Nesting depth of decoded JSON (a scalar is 0), a level at a time, without recursion."""
    depth, level = 0, [value] if isinstance(value, dict | list) else []
    while level:
        depth += 1
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    return depth


def _validate_all(objects: Iterable[tuple[int, object]], *, unit: str, limits: Limits) -> list[SampleRecord]:
    records: list[SampleRecord] = []
    first_line: dict[str, int] = {}
    for record in _validate_each(((number, value, None) for number, value in objects), unit=unit, limits=limits):
        if record.id in first_line:
            raise duplicate_id_error(record, first_line[record.id], unit)
        first_line[record.id] = record.line
        records.append(record)
    if not records:
        raise DatasetError("the file has no records")
    return records


def _validate_each(
    objects: Iterable[tuple[int, object, str | None]], *, unit: str, limits: Limits, start: int = 0
) -> Iterator[SampleRecord]:
    """Each (number, value, its JSON text if kept) validated into a record, in order, after `start` records already
    counted; the record count and the JSON depth are limited."""
    count = start
    for number, value, text in objects:
        if count == limits.max_records:
            raise LimitError(
                f"more than {limits.max_records:,} records", limit=Limits.setting("max_records"), line=number, unit=unit
            )
        # A text with no more opening brackets than the limit cannot nest deeper (brackets inside strings only make
        # the bound looser), so the walk runs only for the rare record that might.
        shallow = text is not None and text.count("{") + text.count("[") <= limits.max_json_depth
        if not shallow and _depth(value) > limits.max_json_depth:
            raise LimitError(
                f"JSON nested deeper than {limits.max_json_depth} levels",
                limit=Limits.setting("max_json_depth"),
                line=number,
                unit=unit,
            )
        count += 1
        yield _validate(value, number, unit, limits, text)


def duplicate_id_error(record: SampleRecord, first: int, unit: str) -> DatasetError:
    """The error of a record whose id an earlier record (at `first`) already has."""
    return DatasetError(
        f"duplicate id {record.id!r} (first on {unit} {first})", line=record.line, field="id", unit=unit
    )


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", bool: "a boolean", str: "a string"}.get(
        type(value), f"{value!r}" if isinstance(value, int | float) else type(value).__name__
    )


class _Checker:
    """Field checks for one record, each error naming the record number and the field's path."""

    def __init__(self, number: int, unit: str, limits: Limits):
        self.number = number
        self.unit = unit
        self.limits = limits

    def fail(self, field_name: str | None, message: str) -> DatasetError:
        return DatasetError(message, line=self.number, field=field_name, unit=self.unit)

    def text(self, obj: Mapping[str, Any], key: str, path: str, *, required: bool, non_empty: bool) -> str | None:
        if key not in obj or obj[key] is None:
            if required:
                raise self.fail(path, "missing")
            return None
        value = obj[key]
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_type_name(value)}")
        if len(value) > self.limits.max_text_chars:
            raise LimitError(
                f"the text is {len(value):,} characters, over {self.limits.max_text_chars:,}",
                limit=Limits.setting("max_text_chars"),
                line=self.number,
                field=path,
                unit=self.unit,
            )
        if non_empty and not value.strip():
            raise self.fail(path, "expected a non-empty string")
        return value


def _validate(value: object, number: int, unit: str, limits: Limits, text: str | None = None) -> SampleRecord:
    check = _Checker(number, unit, limits)
    if not isinstance(value, dict):
        raise check.fail(None, f"expected a JSON object, got {_type_name(value)}")
    raw: dict[str, Any] = value
    identifier = raw.get("id")
    if identifier is None:
        raise check.fail("id", "missing")
    if isinstance(identifier, bool) or not isinstance(identifier, str | int):
        raise check.fail("id", f"expected a string, got {_type_name(identifier)}")
    sample_id = str(identifier)
    if not sample_id.strip():
        raise check.fail("id", "expected a non-empty string")

    layout: Layout
    if "messages" in raw and "response" not in raw and "output" not in raw:
        layout = "chat"
        instruction, response = _chat_turns(check, raw["messages"], "messages")
        sample_input = ""
    else:
        layout = "alpaca" if "output" in raw and "response" not in raw else "native"
        answer_key = "output" if layout == "alpaca" else "response"
        instruction = check.text(raw, "instruction", "instruction", required=True, non_empty=True) or ""
        response = check.text(raw, answer_key, answer_key, required=True, non_empty=True) or ""
        sample_input = check.text(raw, "input", "input", required=False, non_empty=False) or ""

    refinements = _refinements(check, raw.get("refinements"), layout)
    return SampleRecord(
        id=sample_id,
        instruction=instruction,
        input=sample_input,
        response=response,
        refinements=refinements,
        layout=layout,
        line=number,
        raw=raw,
        text=text,
    )


def _chat_turns(check: _Checker, messages: object, path: str) -> tuple[str, str]:
    """The (user, final assistant) pair of a single-turn chat; a leading system turn is allowed."""
    if not isinstance(messages, list):
        raise check.fail(path, f"expected an array of messages, got {_type_name(messages)}")
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        where = f"{path}[{index}]"
        if not isinstance(message, dict):
            raise check.fail(where, f"expected an object with 'role' and 'content', got {_type_name(message)}")
        role = check.text(message, "role", f"{where}.role", required=True, non_empty=True) or ""
        content = check.text(message, "content", f"{where}.content", required=True, non_empty=False) or ""
        if role not in ("system", "user", "assistant"):
            raise check.fail(f"{where}.role", f"expected 'system', 'user' or 'assistant', got {role!r}")
        turns.append((role, content))
    if turns and turns[0][0] == "system":
        turns = turns[1:]
    # One instruction and one answer are what the scores are defined over; longer dialogues are ambiguous.
    if [role for role, _ in turns] != ["user", "assistant"]:
        raise check.fail(path, "expected one user turn then one assistant turn (after an optional system turn)")
    (_, instruction), (_, response) = turns
    if not instruction.strip():
        raise check.fail(f"{path}.user", "expected a non-empty user turn")
    if not response.strip():
        raise check.fail(f"{path}.assistant", "expected a non-empty assistant turn")
    return instruction, response


def _refinements(check: _Checker, value: object, layout: Layout) -> list[Refinement]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise check.fail("refinements", f"expected an array, got {_type_name(value)}")
    # The original is a candidate too.
    if len(value) + 1 > check.limits.max_candidates_per_sample:
        raise LimitError(
            f"{len(value) + 1} candidates (the original and {len(value)} refinements), "
            f"over {check.limits.max_candidates_per_sample}",
            limit=Limits.setting("max_candidates_per_sample"),
            line=check.number,
            field="refinements",
            unit=check.unit,
        )
    refinements: list[Refinement] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        where = f"refinements[{index}]"
        if not isinstance(item, dict):
            raise check.fail(where, f"expected an object, got {_type_name(item)}")
        teacher = check.text(item, "teacher", f"{where}.teacher", required=True, non_empty=True) or ""
        if teacher == ORIGINAL:
            raise check.fail(f"{where}.teacher", f"{ORIGINAL!r} names the sample's own candidate")
        if teacher in seen:
            raise check.fail(
                f"{where}.teacher",
                f"teacher {teacher!r} appears twice in this sample (also refinements[{seen[teacher]}])",
            )
        seen[teacher] = index
        instruction: str | None
        if "messages" in item and "response" not in item and "output" not in item:
            instruction, response = _chat_turns(check, item["messages"], f"{where}.messages")
            refined_input: str | None = None
        else:
            answer_key = "output" if "output" in item and "response" not in item else "response"
            response = check.text(item, answer_key, f"{where}.{answer_key}", required=True, non_empty=True) or ""
            instruction = check.text(item, "instruction", f"{where}.instruction", required=False, non_empty=True)
            refined_input = check.text(item, "input", f"{where}.input", required=False, non_empty=False)
        refinements.append(Refinement(teacher=teacher, response=response, instruction=instruction, input=refined_input))
    return refinements
