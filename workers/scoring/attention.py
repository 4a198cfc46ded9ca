"""Attention over packed prefix trees: each tree attends within itself only, with no padding and no wasted square.

The engine lays the trees of a batch end to end in one flat sequence (batch size 1, no padding rows). A boolean
mask over the whole sequence would make the attention kernel compute every query against every key of the
batch, although a query only ever sees keys of its own tree. Here attention runs tree by tree instead: a
single sequence (a chain) with the causal kernel, which skips the upper triangle, and a tree with branches with
its own [n x n] ancestor mask. Same numbers as the masked full-batch computation (masked keys contribute
exactly zero), a fraction of the work.

The segments reach the attention layers as a keyword argument of the model's forward call, which transformers
passes through to the registered attention function. Called without segments (any other use of the model),
the function is plain causal SDPA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.functional import scaled_dot_product_attention
from transformers import AttentionInterface

PACKED_ATTENTION = "frontier_packed_trees"
SEGMENTS_KWARG = "frontier_segments"


@dataclass(frozen=True, slots=True)
class Segment:
    """One tree's columns [start, end) in the flat sequence; `mask` is its ancestor mask, None for a chain."""

    start: int
    end: int
    mask: torch.Tensor | None


def packed_tree_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention per tree segment: [batch, heads, seq, dim] in, [batch, seq, heads, dim] out."""
    groups = int(getattr(module, "num_key_value_groups", 1))
    if groups > 1:
        # Grouped-query students: each key/value head serves `groups` query heads.
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    segments: list[Segment] | None = kwargs.get(SEGMENTS_KWARG)
    if segments is None:
        out = scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, scale=scaling, is_causal=attention_mask is None
        )
    else:
        out = torch.empty_like(query)
        for segment in segments:
            lo, hi = segment.start, segment.end
            out[:, :, lo:hi] = scaled_dot_product_attention(
                query[:, :, lo:hi],
                key[:, :, lo:hi],
                value[:, :, lo:hi],
                attn_mask=segment.mask,
                scale=scaling,
                is_causal=segment.mask is None,
            )
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(PACKED_ATTENTION, packed_tree_attention)
