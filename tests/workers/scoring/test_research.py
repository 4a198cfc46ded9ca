"""The research templates reproduce their repositories' per-sample numbers (research_reference.py), BOS or not."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM

from core.dataset import candidate_texts, parse_jsonl
from tests.workers.scoring.builders import build_random_student
from tests.workers.scoring.reference import relative_error
from tests.workers.scoring.research_reference import RULES
from workers.scoring import Candidate, Scorer, Student, get_student

# The scripts' default --max_length (Cherry LLM: scripts/cherry_analysis.sh).
REPOSITORY_MAX_LENGTH = {"cherry": 512, "reflection": 2048, "superfiltering": 1024}
SAMPLES = 10
EDGE_CASES = [
    Candidate("Sort the list.", "apple, fig, pear", input="pear, apple, fig"),
    # The instruction occurs again inside the input: their rfind() starts L(Q|A) at the later occurrence.
    Candidate("Sort", "a b", input="Sort this: Sort"),
    Candidate("", "five"),
    Candidate(" Leading space", " x"),
    # One response token: with a BOS it is scored; without (GPT-2) their L(A) has no token left: NaN.
    Candidate("Add two and three.", "5"),
    Candidate("Résumé of a naïve café 😀.", "Unicode text 😀 with tabs\tand\nnewlines."),
]
RANK_FIELDS = ("rank_mean", "rsr")


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def long_student(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Student:
    """A random student long enough for every repository's default maximum length (2048)."""
    directory = build_random_student(
        tmp_path_factory.mktemp(f"long-{request.param}"), arch=request.param, max_length=2048
    )
    return get_student(directory, device="cpu", precision="float32")


@pytest.fixture(scope="module")
def reference_model(long_student: Student) -> Any:
    """A separately loaded, untouched copy (the engine's has fused activations and packed attention)."""
    return AutoModelForCausalLM.from_pretrained(long_student.identity.path, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def candidates(example_data: Path) -> list[Candidate]:
    records = parse_jsonl(example_data)[:SAMPLES]
    texts = [Candidate(t.instruction, t.response, t.input) for record in records for t in candidate_texts(record)]
    return texts + EDGE_CASES


def test_students_cover_both_start_token_behaviours(long_student: Student) -> None:
    ids = long_student.tokenizer.encode("Add two")
    adds_bos = long_student.identity.model_type == "llama"
    assert (ids[0] == long_student.tokenizer.bos_token_id) is adds_bos


@pytest.mark.parametrize(
    ("template", "max_length"),
    [
        ("cherry", None),
        ("cherry", 200),
        ("reflection", None),
        ("reflection", 700),
        ("superfiltering", None),
        ("superfiltering", 200),
    ],
)
def test_research_template_reproduces_its_repository(
    long_student: Student, reference_model: Any, candidates: list[Candidate], template: str, max_length: int | None
) -> None:
    # M: the repository's default, capped at the student's maximum length and at the scorer's.
    limit = min(REPOSITORY_MAX_LENGTH[template], long_student.identity.max_length, max_length or math.inf)
    results = Scorer(long_student, template=template, max_length=max_length).score(candidates)
    worst = dict.fromkeys(("losses", "ranks"), 0.0)
    truncated = 0
    for candidate, result in zip(candidates, results, strict=True):
        expected = RULES[template](
            reference_model,
            long_student.tokenizer,
            candidate.instruction,
            candidate.response,
            candidate.input,
            max_length=int(limit),
        )
        assert result.template == template
        if expected is None:
            assert result.status == "unscored", f"the repository gives NaN for {candidate}"
            assert result.error
            continue
        assert result.status == "scored", f"{result.error} ({candidate})"
        for name, value in result.as_dict().items():
            if name in ("status", "template", "error", "rank_clip"):
                continue
            if name not in expected:
                assert value is None, f"{template} does not measure {name}"
            elif isinstance(expected[name], float):
                assert isinstance(value, float), name
                error = relative_error(value, expected[name])
                kind = "ranks" if name in RANK_FIELDS else "losses"
                worst[kind] = max(worst[kind], error)
                assert error <= (1e-6 if kind == "ranks" else 1e-5), f"{name}: {value} vs {expected[name]}"
            else:
                assert value == expected[name], name
        assert result.rank_clip == 100
        truncated += result.instruction_truncated
    scored = sum(r.status == "scored" for r in results)
    assert scored >= len(candidates) // 2
    if max_length is not None:
        assert truncated > 0, "the smaller maximum length exercises the repository's truncation"
    print(f"{template} M={limit}: {scored}/{len(candidates)} scored, worst relative error {worst}")
