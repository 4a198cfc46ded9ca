"""Dataset parsing: every layout maps onto the native sample, every bad record names its line and field."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.dataset import (
    DatasetError,
    Refinement,
    candidate_texts,
    parse_dataset,
    parse_jsonl,
    parse_parquet,
    parse_records,
)
from core.scores import Candidate
from workers.curation import candidates_of


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


NATIVE = {
    "id": "s-1",
    "instruction": "Add 2 and 3.",
    "input": "",
    "response": "5",
    "refinements": [
        {"teacher": "teacher-near", "response": "2 + 3 = 5."},
        {
            "teacher": "teacher-far",
            "instruction": "Compute 2 + 3 and explain.",
            "response": "Adding gives 5.",
        },
    ],
}


def test_native_record_parses_with_refinements() -> None:
    (record,) = parse_jsonl(jsonl(NATIVE))
    assert record.id == "s-1"
    assert record.layout == "native"
    assert record.line == 1
    assert record.refinements == [
        Refinement(teacher="teacher-near", response="2 + 3 = 5."),
        Refinement(teacher="teacher-far", response="Adding gives 5.", instruction="Compute 2 + 3 and explain."),
    ]
    assert record.teachers == ["teacher-near", "teacher-far"]


def test_candidates_inherit_instruction_and_input_from_the_sample() -> None:
    record = parse_jsonl(jsonl({**NATIVE, "input": "numbers: 2, 3"}))[0]
    assert candidates_of(record) == [
        ("original", None, Candidate(instruction="Add 2 and 3.", response="5", input="numbers: 2, 3")),
        (
            "teacher-near",
            "teacher-near",
            Candidate(instruction="Add 2 and 3.", response="2 + 3 = 5.", input="numbers: 2, 3"),
        ),
        (
            "teacher-far",
            "teacher-far",
            Candidate(instruction="Compute 2 + 3 and explain.", response="Adding gives 5.", input="numbers: 2, 3"),
        ),
    ]
    assert [text.name for text in candidate_texts(record)] == ["original", "teacher-near", "teacher-far"]


def test_alpaca_layout_maps_output_to_response() -> None:
    record = parse_jsonl(
        jsonl(
            {
                "id": 7,
                "instruction": "Say hi.",
                "input": "politely",
                "output": "Hello!",
                "refinements": [{"teacher": "t", "output": "Hello there!"}],
            }
        )
    )[0]
    assert (record.id, record.layout, record.input, record.response) == ("7", "alpaca", "politely", "Hello!")
    assert record.refinements[0].response == "Hello there!"


def test_chat_layout_maps_user_and_assistant_turns() -> None:
    record = parse_jsonl(
        jsonl(
            {
                "id": "c-1",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Capital of France?"},
                    {"role": "assistant", "content": "Paris."},
                ],
                "refinements": [
                    {"teacher": "t1", "response": "It is Paris."},
                    {
                        "teacher": "t2",
                        "messages": [
                            {"role": "user", "content": "Name France's capital."},
                            {"role": "assistant", "content": "Paris"},
                        ],
                    },
                ],
            }
        )
    )[0]
    assert (record.layout, record.instruction, record.response) == ("chat", "Capital of France?", "Paris.")
    assert record.refinements[1] == Refinement(teacher="t2", response="Paris", instruction="Name France's capital.")


def test_blank_lines_and_bom_are_ignored() -> None:
    data = b"\xef\xbb\xbf" + jsonl(NATIVE) + b"\n  \n" + jsonl({**NATIVE, "id": "s-2"})
    records = parse_jsonl(data)
    assert [(r.id, r.line) for r in records] == [("s-1", 1), ("s-2", 4)]


def test_accepts_path_and_file_objects(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(NATIVE))
    assert parse_jsonl(path)[0].id == parse_jsonl(io.BytesIO(jsonl(NATIVE)))[0].id == "s-1"


GOOD = json.dumps({"id": "ok", "instruction": "i", "response": "r"}).encode()


@pytest.mark.parametrize(
    ("line3", "field", "message"),
    [
        (b"{not json", None, "line 3: not valid JSON"),
        (b"[1, 2]", None, "line 3: expected a JSON object, got an array"),
        (json.dumps({"instruction": "i", "response": "r"}).encode(), "id", "line 3, field 'id': missing"),
        (
            json.dumps({"id": " ", "instruction": "i", "response": "r"}).encode(),
            "id",
            "expected a non-empty string",
        ),
        (
            json.dumps({"id": [1], "instruction": "i", "response": "r"}).encode(),
            "id",
            "expected a string, got an array",
        ),
        (
            json.dumps({"id": "x", "response": "r"}).encode(),
            "instruction",
            "line 3, field 'instruction': missing",
        ),
        (
            json.dumps({"id": "x", "instruction": "i"}).encode(),
            "response",
            "line 3, field 'response': missing",
        ),
        (
            json.dumps({"id": "x", "instruction": "i", "response": 42}).encode(),
            "response",
            "line 3, field 'response': expected a string, got 42",
        ),
        (json.dumps({"id": "x", "instruction": "i", "response": ""}).encode(), "response", "non-empty"),
        (json.dumps({"id": "x", "instruction": "i", "response": "r", "input": 1}).encode(), "input", "got 1"),
        (
            json.dumps({"id": "x", "instruction": "i", "response": "r", "refinements": {"a": 1}}).encode(),
            "refinements",
            "expected an array, got an object",
        ),
        (
            json.dumps({"id": "x", "instruction": "i", "response": "r", "refinements": [{"response": "y"}]}).encode(),
            "refinements[0].teacher",
            "missing",
        ),
        (
            json.dumps(
                {
                    "id": "x",
                    "instruction": "i",
                    "response": "r",
                    "refinements": [{"teacher": "t", "response": "a"}, {"teacher": "t", "response": "b"}],
                }
            ).encode(),
            "refinements[1].teacher",
            "teacher 't' appears twice in this sample",
        ),
        (
            json.dumps(
                {
                    "id": "x",
                    "instruction": "i",
                    "response": "r",
                    "refinements": [{"teacher": "original", "response": "a"}],
                }
            ).encode(),
            "refinements[0].teacher",
            "names the sample's own candidate",
        ),
        (
            json.dumps(
                {
                    "id": "x",
                    "instruction": "i",
                    "response": "r",
                    "refinements": [{"teacher": "t", "response": None}],
                }
            ).encode(),
            "refinements[0].response",
            "missing",
        ),
        (
            json.dumps({"id": "x", "messages": [{"role": "user", "content": "q"}]}).encode(),
            "messages",
            "expected one user turn then one assistant turn",
        ),
        (
            json.dumps({"id": "x", "messages": [{"role": "robot", "content": "q"}]}).encode(),
            "messages[0].role",
            "expected 'system', 'user' or 'assistant'",
        ),
        (
            json.dumps({"id": "ok", "instruction": "i", "response": "r"}).encode(),
            "id",
            "duplicate id 'ok' (first on line 1)",
        ),
        (
            b'{"id": "x", "instruction": "\xff", "response": "r"}',
            None,
            "line 3: invalid UTF-8 at byte offset 28",
        ),
        (b'{"id": "x", "instruction": "a\x00", "response": "r"}', None, "line 3: contains a NUL byte"),
        (b"[" * 100_000, None, "line 3: "),
    ],
)
def test_bad_record_names_line_and_field(line3: bytes, field: str | None, message: str) -> None:
    data = (
        GOOD + b"\n" + json.dumps({"id": "ok2", "instruction": "i", "response": "r"}).encode() + b"\n" + line3 + b"\n"
    )
    with pytest.raises(DatasetError, match=r"^line 3") as caught:
        parse_jsonl(data)
    assert caught.value.line == 3
    assert caught.value.field == field
    assert message in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file_is_an_error(data: bytes) -> None:
    with pytest.raises(DatasetError, match="empty"):
        parse_jsonl(data)


def test_parquet_round_trip_and_row_numbers() -> None:
    rows: list[dict[str, Any]] = [
        {
            "id": "p-1",
            "instruction": "i",
            "input": "",
            "response": "r",
            "refinements": [{"teacher": "t", "response": "r2", "instruction": None}],
        },
        {"id": "p-2", "instruction": "i", "input": "", "response": "r", "refinements": []},
    ]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    records = parse_dataset(buffer.getvalue(), name="upload.parquet")
    assert [r.id for r in records] == ["p-1", "p-2"]
    assert records[0].refinements == [Refinement(teacher="t", response="r2")]

    bad = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{"id": "p-1", "instruction": "i", "response": 3}]), bad)
    with pytest.raises(DatasetError, match=r"row 1, field 'response': expected a string, got 3"):
        parse_parquet(bad.getvalue())
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        parse_parquet(b"PAR1 garbage")


def test_json_body_records_are_numbered_as_samples() -> None:
    assert parse_records([NATIVE])[0].id == "s-1"
    with pytest.raises(DatasetError, match=r"sample 2, field 'response': missing"):
        parse_records([NATIVE, {"id": "b", "instruction": "i"}])
    with pytest.raises(DatasetError, match="no samples"):
        parse_records([])
