"""The worker side of a curation job: parsed samples -> the engine's candidates -> stored scores."""

from __future__ import annotations

from service.ingest import SampleRecord, candidate_texts
from workers.scoring.types import Candidate


def candidates_of(record: SampleRecord) -> list[tuple[str, str | None, Candidate]]:
    """Every candidate of a sample as (candidate name, teacher or None, Candidate), the original first."""
    return [
        (
            text.name,
            text.teacher,
            Candidate(instruction=text.instruction, response=text.response, input=text.input),
        )
        for text in candidate_texts(record)
    ]
