"""Streaming dataset reads (core.dataset.iter_dataset): the records and errors of the whole-file parser, read a line
or a batch of rows at a time from the file, in memory that does not grow with the file."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.dataset import (
    DatasetError,
    LimitError,
    Limits,
    SampleRecord,
    candidate_rows,
    candidate_texts,
    iter_dataset,
    parse_dataset,
    parse_jsonl,
    record_line,
)


def record(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"s-{index}",
        "instruction": f"Say {index} in words.",
        "input": "",
        "response": f"{index}",
        "refinements": [{"teacher": "near", "response": f"It is {index}."}],
        **extra,
    }


def write_jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def lines_of(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps(record(index)).encode() for index in range(start, start + n)]


def summary(records: list[SampleRecord]) -> list[tuple[Any, ...]]:
    return [(r.id, r.line, r.layout, r.instruction, r.input, r.response, r.refinements, r.raw) for r in records]


def test_jsonl_stream_matches_the_whole_file_parser(tmp_path: Path) -> None:
    chat = {
        "id": "chat-1",
        "messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}],
    }
    alpaca = {"id": "alpaca-1", "instruction": "Add.", "input": "2 3", "output": "5"}
    data = [b"\xef\xbb\xbf" + lines_of(1)[0], b"", b"   ", json.dumps(chat).encode(), json.dumps(alpaca).encode()]
    path = write_jsonl(tmp_path / "data.jsonl", data + lines_of(3, start=1))
    streamed = list(iter_dataset(path))
    assert summary(streamed) == summary(parse_jsonl(path))
    assert [(r.id, r.line, r.layout) for r in streamed][:3] == [
        ("s-0", 1, "native"),
        ("chat-1", 4, "chat"),
        ("alpaca-1", 5, "alpaca"),
    ]
    # The JSON text is kept as read (a store writes it as is instead of encoding the record again).
    assert json.loads(streamed[1].text or "") == chat
    assert candidate_texts(streamed[0])[1].response == candidate_rows(streamed[0])[1][4] == "It is 0."


def test_gzip_jsonl_is_inflated_as_it_is_read_including_several_members(tmp_path: Path) -> None:
    # bgzip and pigz write several gzip members; every one is data.
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines_of(5)) + b"\n") + gzip.compress(b"\n".join(lines_of(4, 5))))
    streamed = list(iter_dataset(path))
    assert [r.id for r in streamed] == [f"s-{index}" for index in range(9)]
    assert [r.line for r in streamed] == list(range(1, 10))
    assert summary(parse_dataset(path.read_bytes())) == summary(streamed)

    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DatasetError, match="not a readable gzip file"):
        list(iter_dataset(truncated))


def parquet_file(path: Path, rows: list[dict[str, Any]], row_group_size: int) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def test_parquet_is_read_row_group_by_row_group_with_row_numbers(tmp_path: Path) -> None:
    rows = [record(index) for index in range(25)]
    path = parquet_file(tmp_path / "data.parquet", rows, row_group_size=4)
    assert pq.ParquetFile(path).metadata.num_row_groups == 7
    streamed = list(iter_dataset(path))
    assert [(r.id, r.line) for r in streamed] == [(f"s-{index}", index + 1) for index in range(25)]
    assert summary(streamed) == summary(parse_dataset(path.read_bytes(), name="data.parquet"))

    # A resumed read starts inside a row group, numbering rows as the full read does.
    assert [(r.id, r.line) for r in iter_dataset(path, skip=10)] == [(f"s-{i}", i + 1) for i in range(10, 25)]

    bad = parquet_file(tmp_path / "bad.parquet", [*rows[:9], {**rows[9], "response": ""}, *rows[10:]], 4)
    seen: list[str] = []
    with pytest.raises(DatasetError, match=r"^row 10, field 'response': expected a non-empty string$"):
        seen.extend(r.id for r in iter_dataset(bad))
    assert seen == [f"s-{index}" for index in range(9)]


def test_the_format_comes_from_the_name_then_the_magic_bytes(tmp_path: Path) -> None:
    rows = [record(index) for index in range(3)]
    # A spooled upload's own name says nothing: the name given, then the file's first bytes, decide.
    spooled = parquet_file(tmp_path / "upload-1.part", rows, row_group_size=2)
    assert [r.id for r in iter_dataset(spooled)] == ["s-0", "s-1", "s-2"]
    assert [r.id for r in iter_dataset(spooled, name="data.parquet")] == ["s-0", "s-1", "s-2"]
    jsonl = write_jsonl(tmp_path / "upload-2.part", lines_of(2))
    assert [r.id for r in iter_dataset(jsonl)] == ["s-0", "s-1"]
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        list(iter_dataset(jsonl, fmt="parquet"))


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (b"{not json", None, "line 3: not valid JSON"),
        (
            json.dumps({"id": "x", "instruction": "i", "response": 42}).encode(),
            "response",
            "line 3, field 'response': expected a string, got 42",
        ),
        (json.dumps({"id": "x", "instruction": "i"}).encode(), "response", "line 3, field 'response': missing"),
        (b'{"id": "x", "instruction": "\xff", "response": "r"}', None, "line 3: invalid UTF-8 at byte offset 28"),
        (b'{"id": "x", "instruction": "a\x00", "response": "r"}', None, "line 3: contains a NUL byte"),
        (b"[" * 100_000, None, "line 3: JSON nested deeper than 32 levels"),
    ],
)
def test_a_bad_record_names_its_line_and_field_after_the_records_before_it(
    tmp_path: Path, bad: bytes, field: str | None, message: str
) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [*lines_of(2), bad, *lines_of(2, start=2)])
    seen: list[str] = []
    with pytest.raises(DatasetError) as caught:
        seen.extend(r.id for r in iter_dataset(path))
    assert seen == ["s-0", "s-1"]
    assert (caught.value.line, caught.value.field) == (3, field)
    assert str(caught.value).startswith(message)
    # The same words as the whole-file parser's.
    with pytest.raises(DatasetError) as whole:
        parse_jsonl(path)
    assert str(whole.value) == str(caught.value)


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_an_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match="the file is empty: expected one JSON object per line"):
        list(iter_dataset(path))
    empty_parquet = tmp_path / "empty.parquet"
    empty_parquet.write_bytes(b"")
    with pytest.raises(DatasetError, match="the file is empty: expected a Parquet file"):
        list(iter_dataset(empty_parquet))


def test_limits_name_their_setting_and_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", lines_of(5))
    with pytest.raises(LimitError, match=r"^line 4: more than 3 records \(limit: FRONTIER_MAX_RECORDS\)$"):
        list(iter_dataset(path, limits=Limits(max_records=3)))

    long_line = json.dumps(record(9, input="x" * 5000)).encode()
    long = write_jsonl(tmp_path / "long.jsonl", [*lines_of(1), long_line])
    with pytest.raises(LimitError, match=r"^line 2: the line is longer than 4,096 bytes") as caught:
        list(iter_dataset(long, limits=Limits(max_record_bytes=4096)))
    assert caught.value.limit == "FRONTIER_MAX_RECORD_BYTES"

    with pytest.raises(LimitError, match=r"the dataset is [\d,]+ bytes \(limit: FRONTIER_MAX_DATASET_BYTES\)"):
        list(iter_dataset(path, limits=Limits(max_dataset_bytes=100)))

    # A compressed bomb: 64 MiB of newlines in a few KB; inflating stops at the limit.
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"\n" * (64 * 1024 * 1024)))
    with pytest.raises(LimitError, match="the dataset decompresses to more than 1,048,576 bytes"):
        list(iter_dataset(bomb, limits=Limits(max_dataset_bytes=1024 * 1024)))

    rows = [record(index) for index in range(6)]
    parquet = parquet_file(tmp_path / "data.parquet", rows, row_group_size=2)
    with pytest.raises(LimitError, match=r"the file has 6 rows, over 5 \(limit: FRONTIER_MAX_RECORDS\)"):
        list(iter_dataset(parquet, limits=Limits(max_records=5)))
    with pytest.raises(LimitError, match="the decoded table is more than 100 bytes"):
        list(iter_dataset(parquet, limits=Limits(max_dataset_bytes=100)))

    deep = write_jsonl(tmp_path / "deep.jsonl", [json.dumps(record(1, meta=[[[[1]]]])).encode()])
    with pytest.raises(LimitError, match=r"^line 1: JSON nested deeper than 3 levels"):
        list(iter_dataset(deep, limits=Limits(max_json_depth=3)))


def test_a_resumed_read_skips_records_without_reading_them_again(tmp_path: Path) -> None:
    data = [*lines_of(3), b"", *lines_of(3, start=3)]
    path = write_jsonl(tmp_path / "data.jsonl", data)
    full = list(iter_dataset(path))
    assert [(r.id, r.line) for r in iter_dataset(path, skip=4)] == [(r.id, r.line) for r in full[4:]]
    # Skipped records are not validated again (they were stored), but still count against the record limit.
    broken = write_jsonl(tmp_path / "broken.jsonl", [b"{not json", *lines_of(2)])
    assert [r.id for r in iter_dataset(broken, skip=1)] == ["s-0", "s-1"]
    with pytest.raises(LimitError, match="more than 2 records"):
        list(iter_dataset(broken, skip=1, limits=Limits(max_records=2)))
    # Where a record sits, by its 0-based ordinal: blank lines do not count as records.
    assert [record_line(path, ordinal, fmt="jsonl") for ordinal in range(6)] == [1, 2, 3, 5, 6, 7]
    assert record_line(path, 3, fmt="parquet") == 4


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """A lazy read holds one line (and the read buffer) at a time: its peak stays far below the file's size."""
    padding = "p" * 900
    lines = [json.dumps(record(index, input=padding)).encode() for index in range(20_000)]
    path = write_jsonl(tmp_path / "big.jsonl", lines)
    packed = tmp_path / "big.jsonl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
    parquet = parquet_file(tmp_path / "big.parquet", [record(index, input=padding) for index in range(20_000)], 2000)
    size = path.stat().st_size
    assert size > 20_000_000

    for source in (path, packed, parquet):
        records = iter_dataset(source)
        tracemalloc.start()
        try:
            count = sum(1 for _ in records)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count == 20_000
        # The file is 20 MB: a whole-file read would hold all of it (and its records, several times more).
        assert peak < 8_000_000, (source.name, peak)
