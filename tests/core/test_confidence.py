"""The hedging rate (Kim et al. 2026's word list, whole words, case-insensitive) and the overconfident flag."""

from __future__ import annotations

import pytest

from core.confidence import HEDGING_WORDS, hedging_rate, strips_hedging


def test_word_list_is_kim_et_al() -> None:
    assert sorted(HEDGING_WORDS) == sorted(
        ["wait", "hmm", "perhaps", "maybe", "actually", "alternatively", "seems", "might", "likely", "check"]
    )


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("Maybe 24? I think 24 is larger than 16, but let me check. Yes, 24 is likely larger.", 100 * 3 / 14),
        ("WAIT. Hmm, perhaps it SEEMS so.", 100 * 4 / 6),
        # Whole words only: inflections and words that contain a hedge do not count.
        ("He checked the checklist; it seemed unlikely, mightily so.", 0.0),
        ("It's likely, isn't it? Don't check.", 100 * 2 / 6),
        ("24 + 16 = 40 ≤ ℕ", 0.0),
        ("", 0.0),
    ],
)
def test_hedging_rate_per_100_words(text: str, rate: float) -> None:
    assert hedging_rate(text) == pytest.approx(rate)


def test_stripping_needs_a_hedging_original_and_half_its_rate_gone() -> None:
    assert strips_hedging(10.0, 0.0)
    assert strips_hedging(10.0, 5.0)
    assert not strips_hedging(10.0, 5.1)
    assert not strips_hedging(0.9, 0.0)  # an original that barely hedges has nothing to strip
    assert not strips_hedging(0.0, 0.0)
