from __future__ import annotations

import math
import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.workers.scoring.reference import reference_scores, relative_error
from workers.scoring import Candidate, CandidateScores, Scorer, Student

INSTRUCTION = "Add two and three."
CANDIDATES = [
    Candidate(INSTRUCTION, "The answer is five, because two plus three makes five."),
    Candidate(INSTRUCTION, "Five, perhaps. Check the sum again."),
    Candidate(INSTRUCTION, " Leading space and trailing space "),
    Candidate("Sort the list.", "apple, fig, pear", input="pear, apple, fig"),
    Candidate("Sort the list.", "apple, fig, pear"),
    Candidate("Résumé of a naïve café 😀.", "Unicode text 😀 with tabs\tand\nnewlines."),
    Candidate("Ends with a space ", "Starts after the separator.\n\n"),
    Candidate("Convert ten metres to centimetres.", "Ten metres is one thousand centimetres."),
    Candidate(INSTRUCTION, "The answer is five, because two plus three makes five."),  # a duplicate
]
LOSSES = (
    "nll_instruction",
    "nll_response_given_instruction",
    "nll_response",
    "nll_instruction_given_response",
)


def _assert_close(a: CandidateScores, b: CandidateScores, rel: float) -> None:
    assert a.status == b.status == "scored"
    for name in (*LOSSES, "ifd", "rifd", "ifd_loss_ratio", "ppl_response_given_instruction"):
        x, y = getattr(a, name), getattr(b, name)
        assert relative_error(x, y) <= rel, f"{name}: {x} vs {y}"


def test_plain_template_equals_independent_reference(random_student: Student) -> None:
    # A separately loaded, untouched model: the engine's own copy has its activations fused.
    reference_model = AutoModelForCausalLM.from_pretrained(random_student.identity.path, dtype=torch.float32).eval()
    scores = Scorer(random_student, template="plain").score(CANDIDATES)
    for candidate, result in zip(CANDIDATES, scores, strict=True):
        ref = reference_scores(
            reference_model,
            random_student.tokenizer,
            random_student.start_id,
            candidate.instruction,
            candidate.response,
            candidate.input,
        )
        assert result.status == "scored", result.error
        assert result.template == "plain"
        for name in LOSSES:
            assert relative_error(getattr(result, name), getattr(ref, name)) <= 1e-5, name
        assert result.n_instruction_tokens == ref.n_q
        assert result.n_response_tokens == ref.n_a
        assert result.ifd is not None
        assert result.rifd is not None
        assert math.isclose(result.ifd, math.exp(ref.nll_response_given_instruction - ref.nll_response), rel_tol=1e-5)
        assert math.isclose(
            result.rifd, math.exp(ref.nll_instruction_given_response - ref.nll_instruction), rel_tol=1e-5
        )
        assert math.isclose(
            result.ifd_loss_ratio or 0.0, ref.nll_response_given_instruction / ref.nll_response, rel_tol=1e-5
        )


def test_scores_do_not_depend_on_batch_order_or_company(random_student: Student) -> None:
    baseline = Scorer(random_student, batch_tokens=1).score(CANDIDATES)
    for batch_tokens in (64, 512, 100_000):
        for seed in range(2):
            order = list(range(len(CANDIDATES)))
            random.Random(seed).shuffle(order)
            shuffled = Scorer(random_student, batch_tokens=batch_tokens).score([CANDIDATES[i] for i in order])
            for position, index in enumerate(order):
                _assert_close(shuffled[position], baseline[index], rel=1e-5)
    # Alone versus in company of candidates that share its prefixes.
    for index, candidate in enumerate(CANDIDATES):
        _assert_close(Scorer(random_student).score([candidate])[0], baseline[index], rel=1e-5)


def test_shared_prefixes_and_duplicates_are_computed_once(random_student: Student) -> None:
    scorer = Scorer(random_student, batch_tokens=100_000)
    results, stats = scorer.score_with_stats(CANDIDATES)
    # The duplicate candidate adds no work, and candidates of one instruction share its prefix.
    _, without_duplicate = scorer.score_with_stats(CANDIDATES[:-1])
    assert stats.computed_tokens == without_duplicate.computed_tokens
    assert stats.sequence_tokens > without_duplicate.sequence_tokens
    assert stats.computed_tokens < without_duplicate.sequence_tokens
    assert results[0] == results[-1]
    # Only scored positions reach the output head: never more than the distinct tokens computed.
    assert stats.scored_positions < stats.computed_tokens


def test_unscored_candidates_carry_a_reason(random_student: Student) -> None:
    too_long = Candidate(INSTRUCTION, "five " * 400)
    cases = [Candidate("", "five"), Candidate(INSTRUCTION, ""), too_long]
    results = Scorer(random_student).score([*cases, CANDIDATES[0]])
    assert [r.status for r in results] == ["unscored", "unscored", "unscored", "scored"]
    assert results[0].error is not None
    assert "empty instruction" in results[0].error
    assert results[1].error is not None
    assert "empty response" in results[1].error
    assert results[2].error is not None
    assert "too long" in results[2].error
    for result in results[:3]:
        assert all(getattr(result, name) is None for name in (*LOSSES, "ifd", "rifd", "ifd_loss_ratio"))


def test_long_instruction_is_cut_by_the_documented_rule(random_student: Student) -> None:
    long_instruction = "Sort the list of fruit by name. " * 30
    response = "apple, fig, pear"
    (result,) = Scorer(random_student).score([Candidate(long_instruction, response)])
    assert result.status == "scored", result.error
    assert result.instruction_truncated
    max_length = random_student.identity.max_length
    assert (result.n_instruction_tokens or 0) + (result.n_response_tokens or 0) + 3 <= max_length + 1
    # The cut prompt is a prefix of the instruction; scoring that prefix directly gives the same numbers.
    for cut in range(len(long_instruction), 0, -1):
        (direct,) = Scorer(random_student).score([Candidate(long_instruction[:cut], response)])
        if direct.n_instruction_tokens == result.n_instruction_tokens and not direct.instruction_truncated:
            _assert_close(result, direct, rel=1e-5)
            break
    else:
        pytest.fail("no prefix of the instruction reproduces the truncated scores")


def test_chat_mode_falls_back_to_alpaca_and_records_it(random_student: Student) -> None:
    scorer = Scorer(random_student, template="chat")
    assert scorer.template_name == "alpaca"
    results = scorer.score(CANDIDATES[:4])
    assert all(r.status == "scored" and r.template == "alpaca" for r in results)
    plain = Scorer(random_student).score(CANDIDATES[:4])
    assert results[0].nll_response_given_instruction != plain[0].nll_response_given_instruction


def test_chat_template_spans_cover_exactly_the_messages(random_student: Student) -> None:
    tokenizer = random_student.tokenizer
    saved = getattr(tokenizer, "chat_template", None)
    tokenizer.chat_template = "{% for m in messages %}<|endoftext|>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
    try:
        scorer = Scorer(random_student, template="chat")
        assert scorer.template_name == "chat"
        candidate = CANDIDATES[0]
        (result,) = scorer.score([candidate])
        assert result.status == "scored"
        assert result.template == "chat"
        # The Q span is exactly the instruction's tokens inside the user turn.
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": candidate.instruction}, {"role": "assistant", "content": candidate.response}],
            tokenize=False,
        )
        assert candidate.instruction in text
        expected_q = len(tokenizer(candidate.instruction, add_special_tokens=False)["input_ids"])
        assert result.n_instruction_tokens == expected_q
    finally:
        tokenizer.chat_template = saved
