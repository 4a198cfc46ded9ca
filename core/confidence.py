"""The confidence signal: how much a candidate's response hedges, and whether a refinement strips hedging.

Kim et al. 2026 (arXiv 2603.24472) show that students copy the concise, confident style of teachers that saw
the answer and lose epistemic caution out of distribution; their metric counts hedging words per response.
The word list is theirs as restated in the project's science notes: wait, hmm, perhaps, maybe, actually,
alternatively, seems, might, likely, check. We count exactly these forms as whole words, case-insensitively
(so "Maybe" counts, "checked" and "seem" do not), and report a rate per 100 words so long and short responses
compare. Pure Python: the API computes it from the stored candidate texts, no scoring needed.
"""

from __future__ import annotations

import re

HEDGING_WORDS: frozenset[str] = frozenset(
    {"wait", "hmm", "perhaps", "maybe", "actually", "alternatively", "seems", "might", "likely", "check"}
)

# A word is a run of letters (any script), with inner apostrophes ("don't"); digits and symbols are not words.
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")

# A refinement strips hedging when the original hedges at least this often (per 100 words)...
OVERCONFIDENT_MIN_ORIGINAL_RATE = 1.0
# ...and the refinement keeps at most this fraction of the original's rate.
OVERCONFIDENT_MAX_KEPT = 0.5


def hedging_rate(text: str) -> float:
    """Hedging words per 100 words of `text` (0.0 for a text with no words)."""
    words = _WORD.findall(text)
    if not words:
        return 0.0
    hedges = sum(1 for word in words if word.lower() in HEDGING_WORDS)
    return 100.0 * hedges / len(words)


def strips_hedging(original_rate: float, refinement_rate: float) -> bool:
    """True when a refinement keeps at most half of a hedging original's rate: the `overconfident_style` flag."""
    return (
        original_rate >= OVERCONFIDENT_MIN_ORIGINAL_RATE and refinement_rate <= OVERCONFIDENT_MAX_KEPT * original_rate
    )
