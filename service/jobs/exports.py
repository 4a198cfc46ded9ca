"""Filtered exports: each sample's chosen candidate written back in the input's own layout (JSONL or Parquet).

An export reads one decision set (the latest unless `decision_set` names one); with `bundle` it is a zip of the
data file, the decision set's manifest.json and its dataset card README.md (service.jobs.manifest).

A retained sample exports its chosen candidate's instruction, input and response in place of the original's
(`response` for native records, `output` for Alpaca, the user/assistant turns for chat); its other fields
are kept and `refinements` is dropped, so the file trains as-is. Rejected and unscored samples export their
original text. With `scores`, each record also carries a `curation` object: decision, reason, chosen
candidate and its scores, and the policy that decided. Parquet keeps the layout's own columns (plus flat
curation columns) and drops other keys, since one file needs one schema.
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any, Literal

from sqlalchemy.orm import Session

from core.decisions import ExportDecision
from core.scores import SCORE_FIELDS
from service.db import session_scope
from service.jobs import repository
from service.jobs.guards import decided_job
from service.jobs.manifest import build_manifest, dataset_card
from service.jobs.report import build_report
from service.models import Candidate

ExportFormat = Literal["jsonl", "parquet"]
BATCH = 1000


def _apply_chat(messages: list[Any], candidate: Candidate) -> list[Any]:
    turns = copy.deepcopy(messages)
    user = next(i for i in range(len(turns) - 1, -1, -1) if turns[i].get("role") == "user")
    turns[user]["content"] = candidate.instruction + (f"\n\n{candidate.input}" if candidate.input else "")
    turns[-1]["content"] = candidate.response
    return turns


def render_record(payload: dict[str, Any], layout: str, candidate: Candidate | None) -> dict[str, Any]:
    """The sample as training data in its own layout, with `candidate`'s texts when one was chosen."""
    record = {key: value for key, value in payload.items() if key != "refinements"}
    if candidate is None:
        return record
    if layout == "chat":
        record["messages"] = _apply_chat(record["messages"], candidate)
        return record
    record["instruction"] = candidate.instruction
    if candidate.input or "input" in record:
        record["input"] = candidate.input
    record["output" if layout == "alpaca" else "response"] = candidate.response
    return record


def _curation(row: Any, candidate: Candidate | None, policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "decision": row.decision,
        "reason": row.reason,
        "chosen_candidate": row.chosen_candidate,
        "teacher": candidate.teacher if candidate is not None else None,
        "policy": policy,
        "scores": repository.score_values(candidate) if candidate is not None else None,
    }


def iter_records(
    session: Session, job_id: uuid.UUID, decision: ExportDecision, *, scores: bool, decision_set_id: int | None = None
) -> Iterator[tuple[str, dict[str, Any], str, dict[str, Any] | None]]:
    """(sample id, rendered record, layout, curation or None) for every exported sample, in input order."""
    _, decision_set = decided_job(session, job_id, decision_set_id, "exported")
    policy = {
        "name": decision_set.policy,
        "version": decision_set.policy_version,
        "params": decision_set.params,
        "decision_set": decision_set.id,
    }
    filters = repository.SampleFilter(decision=None if decision == "all" else decision)
    after = -1
    while True:
        rows = repository.sample_page(session, job_id, decision_set.id, filters, after_ordinal=after, limit=BATCH)
        if not rows:
            return
        # Only the chosen candidate of each sample is read (one row a sample, not all of its candidates).
        need = [row.id for row in rows if row.chosen_candidate is not None]
        chosen = repository.chosen_candidates(session, decision_set.id, need)
        for row in rows:
            candidate = chosen.get(row.id)
            record = render_record(row.payload, row.layout, candidate)
            yield row.external_id, record, row.layout, (_curation(row, candidate, policy) if scores else None)
        after = rows[-1].ordinal


def iter_jsonl(
    job_id: uuid.UUID, decision: ExportDecision, *, scores: bool = False, decision_set_id: int | None = None
) -> Iterator[bytes]:
    """The export as JSONL bytes, a batch at a time, reading in its own session (it outlives the request)."""
    with session_scope() as session:
        buffer: list[bytes] = []
        records = iter_records(session, job_id, decision, scores=scores, decision_set_id=decision_set_id)
        for _, record, _, curation in records:
            if curation is not None:
                record["curation"] = curation
            buffer.append(json.dumps(record, ensure_ascii=False).encode() + b"\n")
            if len(buffer) >= BATCH:
                yield b"".join(buffer)
                buffer.clear()
        if buffer:
            yield b"".join(buffer)


class _Spool(io.RawIOBase):
    """A write-only sink that hands over what was written so far while keeping Parquet's offsets right."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


_CURATION_COLUMNS = ("decision", "reason", "chosen_candidate", "teacher")


def _parquet_schema(layout: str, scores: bool) -> Any:
    import pyarrow as pa

    text = pa.string()
    fields = [pa.field("id", text)]
    if layout == "chat":
        fields.append(pa.field("messages", pa.list_(pa.struct([("role", text), ("content", text)]))))
    else:
        answer = "output" if layout == "alpaca" else "response"
        fields += [pa.field("instruction", text), pa.field("input", text), pa.field(answer, text)]
    if scores:
        fields += [pa.field(name, text) for name in _CURATION_COLUMNS]
        fields += [
            pa.field(name, pa.bool_() if name == "instruction_truncated" else pa.float64()) for name in SCORE_FIELDS
        ]
    return pa.schema(fields)


def _parquet_row(
    sample_id: str, record: dict[str, Any], layout: str, curation: dict[str, Any] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"id": sample_id}
    if layout == "chat":
        row["messages"] = [{"role": m.get("role"), "content": m.get("content")} for m in record["messages"]]
    else:
        answer = "output" if layout == "alpaca" else "response"
        row.update(instruction=record["instruction"], input=record.get("input", ""), **{answer: record[answer]})
    if curation is not None:
        row.update({name: curation[name] for name in _CURATION_COLUMNS})
        row.update(curation["scores"] or {})
    return row


def iter_parquet(
    job_id: uuid.UUID, decision: ExportDecision, *, scores: bool = False, decision_set_id: int | None = None
) -> Iterator[bytes]:
    """The export as a Parquet file streamed one row group per batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with session_scope() as session:
        layouts = repository.job_layouts(session, job_id)
        # One file has one schema: a single-layout dataset keeps its layout, a mixed one is written natively.
        layout = layouts[0] if len(layouts) == 1 else "native"
        schema = _parquet_schema(layout, scores)
        spool = _Spool()
        writer = pq.ParquetWriter(spool, schema)
        rows: list[dict[str, Any]] = []
        records = iter_records(session, job_id, decision, scores=scores, decision_set_id=decision_set_id)
        for sample_id, record, record_layout, curation in records:
            if record_layout != layout:
                record = _as_native(record, record_layout)
            rows.append(_parquet_row(sample_id, record, layout, curation))
            if len(rows) >= BATCH:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows.clear()
                yield spool.drain()
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
        writer.close()
        yield spool.drain()


def _as_native(record: dict[str, Any], layout: str) -> dict[str, Any]:
    if layout == "alpaca":
        return {**record, "response": record.get("output", "")}
    if layout == "chat":
        messages = record["messages"]
        user = next(m for m in reversed(messages) if m.get("role") == "user")
        return {"instruction": user.get("content", ""), "input": "", "response": messages[-1].get("content", "")}
    return record


def export_stream(
    job_id: uuid.UUID,
    fmt: ExportFormat,
    decision: ExportDecision,
    *,
    scores: bool = False,
    decision_set_id: int | None = None,
    bundle: bool = False,
) -> tuple[int, Iterator[bytes]]:
    """The decision set exported and the byte stream; checks the job can be exported before the first byte."""
    with session_scope() as session:
        _, decision_set = decided_job(session, job_id, decision_set_id, "exported")
        # Pinned now: a re-decide while the stream runs must not switch sets halfway.
        pinned = decision_set.id
    if bundle:
        return pinned, _bundle(job_id, fmt, decision, scores, pinned)
    if fmt == "parquet":
        return pinned, iter_parquet(job_id, decision, scores=scores, decision_set_id=pinned)
    return pinned, iter_jsonl(job_id, decision, scores=scores, decision_set_id=pinned)


def _bundle(
    job_id: uuid.UUID, fmt: ExportFormat, decision: ExportDecision, scores: bool, decision_set_id: int
) -> Iterator[bytes]:
    with session_scope() as session:
        manifest = build_manifest(session, job_id, decision_set_id)
        card = dataset_card(manifest, build_report(session, job_id, decision_set_id))
    data = iter_parquet if fmt == "parquet" else iter_jsonl
    # Spooled: small bundles stay in memory, large ones go to a temporary file instead of filling it.
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with archive.open(f"{decision}.{fmt}", "w", force_zip64=True) as member:
                for block in data(job_id, decision, scores=scores, decision_set_id=decision_set_id):
                    member.write(block)
            archive.writestr("manifest.json", manifest.model_dump_json(indent=2) + "\n")
            archive.writestr("README.md", card)
        spool.seek(0)
        while block := spool.read(1024 * 1024):
            yield block
