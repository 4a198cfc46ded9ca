"""An independent, one-candidate-at-a-time implementation of the plain template, for checking the engine.

It shares no code with workers/scoring: token starts come from the byte lengths of the byte-level BPE
tokens (not from the tokenizer's offsets), each of L(Q), L(A|Q), L(A), L(Q|A) is its own forward pass on
the full model with logits materialised, as the research code does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch


@cache
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of byte-level BPE's byte -> printable-character table (GPT-2's scheme)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def token_char_starts(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """Token ids of `text` (no special tokens) and the character at which each token starts."""
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    table = _unicode_to_byte()
    encoded = text.encode("utf-8")
    starts: list[int] = []
    byte_at = 0
    for token in tokenizer.convert_ids_to_tokens(ids):
        # A token starting inside a multi-byte character starts at that character.
        starts.append(len(encoded[:byte_at].decode("utf-8", errors="ignore")))
        byte_at += len(bytes(table[c] for c in token))
    assert byte_at == len(encoded), "byte-level tokens must cover the text exactly"
    return ids, starts


@dataclass(frozen=True)
class ReferenceScores:
    nll_instruction: float
    nll_response_given_instruction: float
    nll_response: float
    nll_instruction_given_response: float
    n_q: int
    n_a: int


def _span(starts: list[int], lo: int, hi: int) -> tuple[int, int]:
    inside = [i for i, s in enumerate(starts) if lo <= s < hi]
    assert inside == list(range(inside[0], inside[-1] + 1))
    return inside[0] + 1, inside[-1] + 2  # +1: the start token sits in front


def _mean_nll(model: Any, ids: list[int], span: tuple[int, int]) -> float:
    with torch.no_grad():
        # On the model's device (the benchmark runs this reference on a GPU too).
        batch = torch.tensor([ids], device=next(model.parameters()).device)
        # An explicit all-ones mask: the start token doubles as the pad id, which makes transformers warn.
        logits = model(batch, attention_mask=torch.ones_like(batch)).logits[0].double()
    logprobs = torch.log_softmax(logits, dim=-1)
    positions = torch.arange(*span, device=batch.device)
    # One gather and one copy back: an item() per token would time the host round trips, not the model.
    values: list[float] = (-logprobs[positions - 1, batch[0, positions]]).tolist()
    return sum(values) / len(values)


def reference_scores(
    model: Any, tokenizer: Any, start_id: int, instruction: str, response: str, input_text: str = ""
) -> ReferenceScores:
    """The four losses of the plain template, four separate forward passes, one candidate."""
    prompt = instruction + ("\n\n" + input_text if input_text else "")
    forward_text = prompt + "\n\n" + response
    f_ids, f_starts = token_char_starts(tokenizer, forward_text)
    q = _span(f_starts, 0, len(prompt))
    a = _span(f_starts, len(prompt) + 2, len(forward_text))
    backward_text = response + "\n\n" + prompt
    b_ids, b_starts = token_char_starts(tokenizer, backward_text)
    a_b = _span(b_starts, 0, len(response))
    q_b = _span(b_starts, len(response) + 2, len(backward_text))
    forward = [start_id, *f_ids]
    backward = [start_id, *b_ids]
    return ReferenceScores(
        nll_instruction=_mean_nll(model, forward[: q[1]], q),
        nll_response_given_instruction=_mean_nll(model, forward, a),
        nll_response=_mean_nll(model, backward[: a_b[1]], a_b),
        nll_instruction_given_response=_mean_nll(model, backward, q_b),
        n_q=q[1] - q[0],
        n_a=a[1] - a[0],
    )


def reference_ranks(
    model: Any, tokenizer: Any, start_id: int, instruction: str, response: str, input_text: str = "", *, clip: int
) -> tuple[float, float]:
    """(mean clipped rank, rank-surprisal ratio) of the plain template's L(A|Q) tokens, from the full softmax.

    A token's rank is 1 + the number of vocabulary entries whose logit is strictly greater than its own,
    counted one position at a time, then clipped at `clip` (arXiv 2601.14249).
    """
    prompt = instruction + ("\n\n" + input_text if input_text else "")
    text = prompt + "\n\n" + response
    ids, starts = token_char_starts(tokenizer, text)
    a = _span(starts, len(prompt) + 2, len(text))
    sequence = [start_id, *ids]
    with torch.no_grad():
        batch = torch.tensor([sequence])
        logits = model(batch, attention_mask=torch.ones_like(batch)).logits[0]
    ranks: list[int] = []
    surprisal = 0.0
    for p in range(*a):
        row = logits[p - 1]
        target = sequence[p]
        ranks.append(min(1 + sum(1 for value in row.tolist() if value > row[target].item()), clip))
        surprisal -= torch.softmax(row.double(), dim=-1)[target].log().item()
    return sum(ranks) / len(ranks), sum(ranks) / surprisal


def relative_error(a: float, b: float) -> float:
    """|a - b| relative to |b| (absolute near zero)."""
    return abs(a - b) / max(abs(b), 1e-12) if not math.isclose(b, 0.0) else abs(a - b)
