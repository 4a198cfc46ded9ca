"""Exports from `frontier jobs export` load unchanged with Hugging Face `datasets`, in the input's own layout.

One job per layout the ingest accepts (native `response`, Alpaca `output`, chat `messages`), exported as JSONL
and Parquet and loaded offline with `datasets.load_dataset("json" | "parquet", ...)`: the same rows, the same
field names as the file, and the chosen candidate's text in the layout's own answer field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from frontier.cli import main
from frontier.client import Client
from tests.live_server import LiveServer
from tests.services import as_jsonl, example_records

N_SAMPLES = 6
WAIT_S = 300
LAYOUT_FIELDS = {
    "native": ["id", "instruction", "input", "response"],
    "alpaca": ["id", "instruction", "input", "output"],
    "chat": ["id", "messages"],
}


def as_layout(record: dict[str, Any], layout: str) -> dict[str, Any]:
    """An example record (native layout) rewritten in `layout`, refinements included."""
    if layout == "native":
        return record
    if layout == "alpaca":
        refinements = [
            {**{k: v for k, v in r.items() if k != "response"}, "output": r["response"]} for r in record["refinements"]
        ]
        return {
            "id": record["id"],
            "instruction": record["instruction"],
            "input": record["input"],
            "output": record["response"],
            "refinements": refinements,
        }
    messages = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": record["instruction"]},
        {"role": "assistant", "content": record["response"]},
    ]
    return {"id": record["id"], "messages": messages, "refinements": record["refinements"]}


def answer(row: dict[str, Any], layout: str) -> str:
    """The response text of an exported row."""
    value = row["messages"][-1]["content"] if layout == "chat" else row["output" if layout == "alpaca" else "response"]
    assert isinstance(value, str)
    return value


@pytest.fixture(scope="module")
def hf_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`datasets` with no network and its caches in a temporary directory (set before it is first imported)."""
    home = tmp_path_factory.mktemp("hf-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_DATASETS_OFFLINE", "1")
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("HF_HOME", str(home))
        yield home


@pytest.mark.parametrize("layout", ["native", "alpaca", "chat"])
def test_exports_load_unchanged_with_datasets_in_the_inputs_layout(
    frontier_server: LiveServer,
    small_student: Path,
    hf_offline: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    layout: str,
) -> None:
    import datasets

    records = [as_layout(record, layout) for record in example_records(N_SAMPLES, start=150)]
    data = tmp_path / f"{layout}.jsonl"
    data.write_bytes(as_jsonl(records))
    with Client(frontier_server.url) as client:
        job = client.wait(client.submit(data, student=str(small_student)).id, poll_seconds=0.2, timeout=WAIT_S)
        assert job.status == "succeeded", job.error
        assert job.counts.retained > 0
        samples = {s.sample_id: client.sample(job.id, s.sample_id) for s in client.samples(job.id)}

    for decision in ("all", "retained"):
        jsonl, parquet = tmp_path / f"{decision}.jsonl", tmp_path / f"{decision}.parquet"
        for out in (jsonl, parquet):
            argv = ["jobs", "export", str(job.id), "--out", str(out), "--decision", decision]
            assert main([*argv, "--server", frontier_server.url]) == 0
        capsys.readouterr()
        rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
        expected = N_SAMPLES if decision == "all" else job.counts.retained
        assert len(rows) == expected
        # The layout's own fields, nothing else: the file trains as-is.
        assert all(list(row) == LAYOUT_FIELDS[layout] for row in rows)
        assert pq.read_table(parquet).column_names == LAYOUT_FIELDS[layout]
        assert pq.read_table(parquet).to_pylist() == rows

        cache = str(tmp_path / "hf-cache" / decision)
        if rows:
            from_json = datasets.load_dataset("json", data_files=str(jsonl), split="train", cache_dir=cache)
            assert from_json.column_names == LAYOUT_FIELDS[layout]
            assert from_json.to_list() == rows
        from_parquet = datasets.load_dataset("parquet", data_files=str(parquet), split="train", cache_dir=cache)
        assert from_parquet.column_names == LAYOUT_FIELDS[layout]
        assert from_parquet.to_list() == rows

    # The retained rows carry the chosen candidate's text in the layout's answer field (and the rest untouched).
    for row in rows:
        sample = samples[row["id"]]
        chosen = next(c for c in sample.candidates if c.name == sample.chosen_candidate)
        assert answer(row, layout) == chosen.response
        if layout == "chat":
            assert row["messages"][0] == {"role": "system", "content": "You are a careful assistant."}
            assert row["messages"][1]["content"] == chosen.instruction
        else:
            assert row["instruction"] == chosen.instruction
