"""Rank statistics (Rank-Surprisal Ratio, arXiv 2601.14249) against a full-softmax, explicit-count reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.workers.scoring.builders import build_random_student
from tests.workers.scoring.reference import reference_ranks, relative_error
from tests.workers.scoring.test_engine import CANDIDATES
from workers.scoring import Scorer, Student, get_student


def _check(student: Student, clip: int) -> float:
    reference_model = AutoModelForCausalLM.from_pretrained(student.identity.path, dtype=torch.float32).eval()
    results = Scorer(student, rank_clip=clip).score(CANDIDATES)
    worst = 0.0
    for candidate, result in zip(CANDIDATES, results, strict=True):
        assert result.status == "scored", result.error
        assert result.rank_clip == clip
        rank_mean, rsr = reference_ranks(
            reference_model,
            student.tokenizer,
            student.start_id,
            candidate.instruction,
            candidate.response,
            candidate.input,
            clip=clip,
        )
        assert result.rank_mean is not None
        assert result.rsr is not None
        assert 1.0 <= result.rank_mean <= clip
        worst = max(worst, relative_error(result.rank_mean, rank_mean), relative_error(result.rsr, rsr))
        assert relative_error(result.rank_mean, rank_mean) <= 1e-6, (result.rank_mean, rank_mean)
        assert relative_error(result.rsr, rsr) <= 1e-6, (result.rsr, rsr)
    return worst


# 1: every rank clipped to 1; 5: clipping active on most tokens; 1000: above the 300-token vocabulary.
@pytest.mark.parametrize("clip", [1, 5, 100, 1000])
def test_ranks_equal_the_full_softmax_reference(random_student: Student, clip: int) -> None:
    _check(random_student, clip)
    if clip == 1:
        assert all(r.rank_mean == 1.0 for r in Scorer(random_student, rank_clip=1).score(CANDIDATES))


@pytest.fixture(scope="module")
def tied_student(tmp_path_factory: pytest.TempPathFactory) -> Student:
    """Every logit exactly equals another token's: each target ties with its twin."""
    directory: Path = build_random_student(tmp_path_factory.mktemp("tied"), arch="llama", tied_logits=True)
    return get_student(directory, device="cpu", precision="float32")


@pytest.mark.parametrize("clip", [100, 1000])
def test_tied_logits_are_not_counted_above_the_target(tied_student: Student, clip: int) -> None:
    head: Any = tied_student.model.get_output_embeddings().weight
    half = head.shape[0] // 2
    assert torch.equal(head[:half], head[half : 2 * half])
    _check(tied_student, clip)


def test_without_a_clip_no_ranks_and_the_same_losses(random_student: Student) -> None:
    with_ranks = Scorer(random_student).score(CANDIDATES)
    without = Scorer(random_student, rank_clip=None).score(CANDIDATES)
    for a, b in zip(with_ranks, without, strict=True):
        assert b.rank_mean is None
        assert b.rsr is None
        assert b.rank_clip is None
        assert a.rank_clip == 100
        assert a.nll_response_given_instruction == b.nll_response_given_instruction
        assert a.rifd == b.rifd


def test_rank_clip_must_be_positive(random_student: Student) -> None:
    with pytest.raises(ValueError, match="rank_clip"):
        Scorer(random_student, rank_clip=0)
