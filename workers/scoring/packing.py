"""Prefix trees and token-budget batches: each distinct token is computed once, nothing padded.

Sequences are sorted lexicographically by token ids; a run of neighbours that share prefixes becomes one
*tree*: a flat list of nodes (one per distinct prefix) in which a node attends to its ancestors and itself
only, at the position it has in its own sequence. This is exact: a node sees precisely the tokens it would
see in a separate causal pass. A sequence joins the tree of its predecessor when the tokens it shares save
more work than the extra attention the larger tree costs; trees are then grouped into batches of at most
`batch_tokens` tokens, laid end to end without padding (attention stays inside each tree: attention.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from workers.scoring.attention import Segment


@dataclass(slots=True)
class Tree:
    """Nodes in depth-first order; `paths[k]` lists the node of each position of member sequence k."""

    tokens: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    paths: list[list[int]] = field(default_factory=list)
    # For each member: (first new node, prefix nodes shared with earlier members) to build the mask.
    segments: list[tuple[int, list[int]]] = field(default_factory=list)

    def add(self, member: int, ids: Sequence[int], shared: int) -> None:
        """Append a sequence whose first `shared` tokens are the prefix of the previous member."""
        prefix = self.paths[-1][:shared] if shared else []
        first = len(self.tokens)
        parent = prefix[-1] if prefix else -1
        path = list(prefix)
        for depth in range(shared, len(ids)):
            self.tokens.append(ids[depth])
            self.depths.append(depth)
            self.parents.append(parent)
            parent = len(self.tokens) - 1
            path.append(parent)
        self.members.append(member)
        self.paths.append(path)
        self.segments.append((first, prefix))


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    limit = min(len(a), len(b))
    i = 0
    while i < limit and a[i] == b[i]:
        i += 1
    return i


def build_trees(sequences: Sequence[tuple[int, ...]], *, max_tree_tokens: int, tokens_per_pair: float) -> list[Tree]:
    """Group sequences into prefix trees.

    `tokens_per_pair` is the cost of one attention score relative to one token's dense work: about
    1/(6*d_model) for a transformer (4*d FLOPs per score against 24*d^2 per token). A sequence joins the
    current tree when the tokens it shares are worth more than the extra scores the bigger tree computes.
    """
    order = sorted(range(len(sequences)), key=sequences.__getitem__)
    trees: list[Tree] = []
    current: Tree | None = None
    previous: tuple[int, ...] = ()
    for index in order:
        ids = sequences[index]
        shared = common_prefix(previous, ids) if current is not None else 0
        if current is not None and shared > 0:
            size = len(current.tokens)
            new = len(ids) - shared
            extra_pairs = (size + new) ** 2 - size**2 - len(ids) ** 2
            if size + new <= max_tree_tokens and shared > extra_pairs * tokens_per_pair:
                current.add(index, ids, shared)
                previous = ids
                continue
        current = Tree()
        current.add(index, ids, 0)
        trees.append(current)
        previous = ids
    return trees


@dataclass(frozen=True, slots=True)
class Batch:
    """Model inputs for a group of trees laid end to end in one flat sequence (batch size 1, no padding)."""

    trees: list[Tree]
    offsets: list[int]
    input_ids: torch.Tensor
    position_ids: torch.Tensor
    segments: list[Segment]

    @property
    def tokens(self) -> int:
        """Tokens the model computes for this batch."""
        return int(self.input_ids.shape[1])


def plan_batches(trees: Sequence[Tree], batch_tokens: int) -> list[list[Tree]]:
    """Group trees, largest first, into batches of at most `batch_tokens` tokens (a larger tree runs alone).

    Attention never crosses trees (see attention.py), so a batch is only a unit of dense work: nothing is padded,
    and the order of trees inside a batch changes nothing.
    """
    ordered = sorted(trees, key=lambda t: len(t.tokens), reverse=True)
    batches: list[list[Tree]] = []
    used = batch_tokens
    for tree in ordered:
        size = len(tree.tokens)
        if used + size > batch_tokens:
            batches.append([])
            used = 0
        batches[-1].append(tree)
        used += size
    return batches


def tree_mask(tree: Tree) -> torch.Tensor | None:
    """The [n x n] ancestor mask of a tree (True = may attend), or None when the tree is one causal chain."""
    if len(tree.segments) == 1:
        return None
    size = len(tree.tokens)
    mask: npt.NDArray[np.bool_] = np.zeros((size, size), dtype=np.bool_)
    ends = [first for first, _ in tree.segments[1:]] + [size]
    for (first, prefix), end in zip(tree.segments, ends, strict=True):
        mask[first:end, first:end] = np.tri(end - first, dtype=np.bool_)
        if prefix:
            mask[first:end, prefix] = True
    return torch.from_numpy(mask)


def make_batch(trees: list[Tree], device: torch.device) -> Batch:
    """Tensors for one batch: ids, positions (depth in own sequence) and each tree's attention segment."""
    offsets: list[int] = []
    segments: list[Segment] = []
    total = 0
    for tree in trees:
        mask = tree_mask(tree)
        segments.append(Segment(total, total + len(tree.tokens), None if mask is None else mask.to(device)))
        offsets.append(total)
        total += len(tree.tokens)
    ids = torch.tensor([token for tree in trees for token in tree.tokens], dtype=torch.long, device=device)
    positions = torch.tensor([depth for tree in trees for depth in tree.depths], dtype=torch.long, device=device)
    return Batch(
        trees=trees,
        offsets=offsets,
        input_ids=ids.unsqueeze(0),
        position_ids=positions.unsqueeze(0),
        segments=segments,
    )
