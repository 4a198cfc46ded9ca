"""Prefix trees and token-budget batches: each distinct token is computed once, with little padding.

Sequences are sorted lexicographically by token ids; a run of neighbours that share prefixes becomes one
*tree*: a flat list of nodes (one per distinct prefix) in which a node attends to its ancestors and itself
only, at the position it has in its own sequence. This is exact: a node sees precisely the tokens it would
see in a separate causal pass. A sequence joins the tree of its predecessor when the tokens it shares save
more work than the extra attention the larger tree costs; trees are then sorted by size and packed into
batches of at most `batch_tokens` padded tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch


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
class Placement:
    """Where a tree sits in a batch: its row and the column of its first node."""

    row: int
    offset: int


@dataclass(frozen=True, slots=True)
class Batch:
    """Model inputs for a group of trees, several trees per row when they fit, right-padded."""

    trees: list[Tree]
    placements: list[Placement]
    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    padded_tokens: int


def plan_batches(trees: Sequence[Tree], batch_tokens: int) -> list[list[list[Tree]]]:
    """Pack trees, largest first, into rows as wide as the batch's largest tree (first fit), and rows
    into batches of at most `batch_tokens` padded tokens. Small trees fill the gaps beside large ones."""
    ordered = sorted(trees, key=lambda t: len(t.tokens), reverse=True)
    batches: list[list[list[Tree]]] = []
    free: list[int] = []  # free columns of each row of the open batch
    width = 0
    for tree in ordered:
        size = len(tree.tokens)
        row = next((i for i, room in enumerate(free) if room >= size), None)
        if row is not None:
            batches[-1][row].append(tree)
            free[row] -= size
        elif batches and (len(free) + 1) * width <= batch_tokens:
            batches[-1].append([tree])
            free.append(width - size)
        else:
            width = size
            batches.append([[tree]])
            free = [0]
    return batches


def make_batch(rows: list[list[Tree]], pad_id: int) -> Batch:
    """Tensors for one batch: ids, positions (depth in own sequence) and a boolean ancestor mask."""
    width = max(sum(len(t.tokens) for t in row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    positions = np.zeros((len(rows), width), dtype=np.int64)
    mask: npt.NDArray[np.bool_] = np.zeros((len(rows), width, width), dtype=np.bool_)
    causal = np.tril(np.ones((width, width), dtype=np.bool_))
    trees: list[Tree] = []
    placements: list[Placement] = []
    for row_index, row in enumerate(rows):
        offset = 0
        for tree in row:
            size = len(tree.tokens)
            ids[row_index, offset : offset + size] = tree.tokens
            positions[row_index, offset : offset + size] = tree.depths
            ends = [first for first, _ in tree.segments[1:]] + [size]
            for (first, prefix), end in zip(tree.segments, ends, strict=True):
                lo, hi = offset + first, offset + end
                mask[row_index, lo:hi, lo:hi] = causal[: hi - lo, : hi - lo]
                if prefix:
                    mask[row_index, lo:hi, [offset + node for node in prefix]] = True
            trees.append(tree)
            placements.append(Placement(row_index, offset))
            offset += size
        # Padding attends to itself only, so no softmax row is empty (an empty row would give NaN).
        pad = np.arange(offset, width)
        mask[row_index, pad, pad] = True
    return Batch(
        trees=trees,
        placements=placements,
        input_ids=torch.from_numpy(ids),
        position_ids=torch.from_numpy(positions),
        attention_mask=torch.from_numpy(mask).unsqueeze(1),
        padded_tokens=len(rows) * width,
    )
