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
a job is created whole or not at all. Size limits (`Limits`: records, bytes per record, candidates per
sample, characters per text, JSON depth, bytes after gzip decompression) raise `LimitError`, which names
the limit and its setting. JSONL may be gzip-compressed; it is decompressed under the byte limit, so a
compressed bomb stops at the limit instead of filling memory. Torch-free and workers-free on purpose: the
API imports this (`workers.curation.candidates_of` turns `candidate_texts` into the engine's `Candidate`s).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
    candidates = [CandidateText(ORIGINAL, None, record.instruction, record.input, record.response)]
    for refinement in record.refinements:
        candidates.append(
            CandidateText(
                name=refinement.teacher,
                teacher=refinement.teacher,
                instruction=refinement.instruction if refinement.instruction is not None else record.instruction,
                input=refinement.input if refinement.input is not None else record.input,
                response=refinement.response,
            )
        )
    return candidates


def parse_jsonl(data: bytes | BinaryIO | Path, *, limits: Limits = DEFAULT_LIMITS) -> list[SampleRecord]:
    """Parse a JSONL dataset (one JSON object per line; blank lines ignored), gzip-compressed or not."""
    raw = _read_bytes(data)
    if raw.startswith(GZIP_MAGIC):
        raw = _gunzip(raw, limits)
    elif len(raw) > limits.max_dataset_bytes:
        raise LimitError(f"the dataset is {len(raw):,} bytes", limit=Limits.setting("max_dataset_bytes"))
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
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
    if fmt is None:
        lowered = name.lower().removesuffix(".gz")
        if lowered.endswith((".parquet", ".pq")) or (raw[:4] == b"PAR1" and not lowered.endswith(".jsonl")):
            fmt = "parquet"
        else:
            fmt = "jsonl"
    return parse_parquet(raw, limits=limits) if fmt == "parquet" else parse_jsonl(raw, limits=limits)


def _gunzip(raw: bytes, limits: Limits) -> bytes:
    """Decompress gzip data, stopping as soon as the output would pass `max_dataset_bytes`."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(raw, limits.max_dataset_bytes + 1)
    except zlib.error as exc:
        raise DatasetError(f"not a readable gzip file: {exc}") from exc
    if len(out) > limits.max_dataset_bytes:
        raise LimitError(
            f"the dataset decompresses to more than {limits.max_dataset_bytes:,} bytes",
            limit=Limits.setting("max_dataset_bytes"),
        )
    if not inflater.eof:
        raise DatasetError("not a readable gzip file: the compressed data is truncated")
    return out


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
        if b"\x00" in line:
            raise DatasetError("contains a NUL byte", line=number)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"invalid UTF-8 at byte offset {exc.start}", line=number) from exc
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"not valid JSON: {exc.msg} (column {exc.colno})", line=number) from exc
        except RecursionError as exc:
            raise LimitError(
                f"JSON nested deeper than {limits.max_json_depth} levels",
                limit=Limits.setting("max_json_depth"),
                line=number,
            ) from exc
        yield number, value


def _depth(value: object) -> int:
    """Nesting depth of decoded JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in children)
    return deepest


def _validate_all(objects: Iterable[tuple[int, object]], *, unit: str, limits: Limits) -> list[SampleRecord]:
    records: list[SampleRecord] = []
    first_line: dict[str, int] = {}
    for number, value in objects:
        if len(records) == limits.max_records:
            raise LimitError(
                f"more than {limits.max_records:,} records", limit=Limits.setting("max_records"), line=number, unit=unit
            )
        if _depth(value) > limits.max_json_depth:
            raise LimitError(
                f"JSON nested deeper than {limits.max_json_depth} levels",
                limit=Limits.setting("max_json_depth"),
                line=number,
                unit=unit,
            )
        record = _validate(value, number, unit, limits)
        if record.id in first_line:
            raise DatasetError(
                f"duplicate id {record.id!r} (first on {unit} {first_line[record.id]})",
                line=number,
                field="id",
                unit=unit,
            )
        first_line[record.id] = number
        records.append(record)
    if not records:
        raise DatasetError("the file has no records")
    return records


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


def _validate(value: object, number: int, unit: str, limits: Limits) -> SampleRecord:
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
