"""The scorer: a student's L(Q), L(A|Q), L(A) and L(Q|A) for many candidates, plus rank statistics.

With a two-pass template, one causal pass over [S; Q; A] gives the unconditional L(Q) on the Q tokens and
L(A|Q) on the A tokens; one over [S; A; Q] gives L(A) and L(Q|A) (Li et al., Cherry LLM, NAACL 2024, and
Selective Reflection-Tuning, ACL Findings 2024, define IFD and r-IFD from these). A research template
declares the sequences its repository scores (research.py). Across candidates, identical sequences run
once and shared prefixes run once (see packing.py); the output head and cross-entropy are evaluated only
at scored positions, in chunks, with log-sum-exp in float32. The same logits give each L(A|Q) token's
rank (Rank-Surprisal Ratio, arXiv 2601.14249): no extra pass. The numbers equal a one-candidate-at-a-time
reference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from core.scores import DEFAULT_RANK_CLIP, Candidate, CandidateScores
from workers.scoring.attention import SEGMENTS_KWARG
from workers.scoring.encoding import CandidateEncoder
from workers.scoring.packing import Tree, build_trees, make_batch, plan_batches
from workers.scoring.research import ResearchEncoder, ResearchTemplate
from workers.scoring.spans import (
    INSTRUCTION,
    INSTRUCTION_GIVEN_RESPONSE,
    RESPONSE,
    RESPONSE_GIVEN_INSTRUCTION,
    CandidateError,
    EncodedCandidate,
    Encoder,
    ScoredSpan,
)
from workers.scoring.student import Student
from workers.scoring.templates import SpanTokenizer, resolve_template

# Rows of hidden states sent through the output head at once, instead of materialising [tokens x vocabulary].
# Up to 1024 rows (narrower matmuls run well below peak: 333 rows x 50k vocab reached 145 GFLOP/s against
# 200 for 1024 rows on the 2-core CPU), capped at ~256 MiB of fp32 logits for very large vocabularies.
HEAD_CHUNK_ROWS = 1024
HEAD_CHUNK_ELEMENTS = 1 << 26
# Rows whose logits are compared with their target's at once, into a float32 scratch that stays in cache.
# Summing a float 0/1 scratch is vectorised where a bool one is not: on the 2-core CPU, 1024 rows x 50k
# vocabulary took 17 ms in blocks of 128 rows, 64 ms in one float block and 210 ms through a bool mask.
RANK_BLOCK_ROWS = 128

# Padded tokens per batch when the caller does not choose. On CPU small batches stay in cache and waste
# less attention on packed rows (gpt2-small on the 2-core CPU: 2048 -> 17.3 s, 4096 -> 19.2 s,
# 8192 -> 26.8 s for the same 48 candidates); a GPU needs large batches to fill its cores.
DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 16384}

ProgressCallback = Callable[[int, int], None]
SpanValues = Callable[[ScoredSpan], tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]


@dataclass(frozen=True, slots=True)
class ScoringStats:
    """What one `score` call did: the work of each candidate's own sequences against what was computed."""

    candidates: int
    scored: int
    unscored: int
    sequence_tokens: int
    computed_tokens: int
    scored_positions: int
    attention_pairs: int
    batches: int
    seconds: float


class Scorer:
    """Scores candidates with one student and one template.

    `score(candidates)` returns one `CandidateScores` per candidate, in input order. A candidate that cannot
    be scored (empty span, too long for the student, non-finite loss, template failure, or where a research
    template's repository gives NaN) comes back with `status="unscored"` and an `error`; no number is ever
    filled in for it. Results do not depend on the batch size or on which other candidates are scored in the
    same call, beyond float rounding. `rank_clip` is the RSR clip r; None computes no rank statistics.
    """

    def __init__(
        self,
        student: Student,
        *,
        template: str = "plain",
        batch_tokens: int | None = None,
        max_length: int | None = None,
        rank_clip: int | None = DEFAULT_RANK_CLIP,
    ) -> None:
        if batch_tokens is None:
            batch_tokens = DEFAULT_BATCH_TOKENS.get(student.device.type, 8192)
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        if rank_clip is not None and rank_clip < 1:
            raise ValueError(f"rank_clip must be positive, got {rank_clip}")
        self.student = student
        start_token = student.tokenizer.convert_ids_to_tokens(student.start_id)
        self.template = resolve_template(template, student.tokenizer, start_token)
        self.batch_tokens = batch_tokens
        self.rank_clip = rank_clip
        limit = student.identity.max_length if max_length is None else min(max_length, student.identity.max_length)
        self.max_length = limit
        self._encoder: Encoder
        if isinstance(self.template, ResearchTemplate):
            self._encoder = ResearchEncoder(self.template, student.tokenizer, limit)
        else:
            self._encoder = CandidateEncoder(self.template, SpanTokenizer(student.tokenizer), student.start_id, limit)
        self._head = student.model.get_output_embeddings()
        self._base = student.model.base_model

    @property
    def template_name(self) -> str:
        """The template actually used (`chat` may resolve to `alpaca`), recorded with every result."""
        return self.template.name

    def score(self, candidates: Sequence[Candidate], progress: ProgressCallback | None = None) -> list[CandidateScores]:
        """Scores for each candidate, in input order."""
        return self.score_with_stats(candidates, progress)[0]

    def score_with_stats(
        self, candidates: Sequence[Candidate], progress: ProgressCallback | None = None
    ) -> tuple[list[CandidateScores], ScoringStats]:
        """Scores plus a record of the work done; `progress(done, total)` is called after each batch."""
        started = time.perf_counter()
        encoded = self._encoder.encode(candidates)
        sequences: dict[tuple[int, ...], int] = {}
        wanted: list[set[int]] = []
        ranked: list[set[int]] = []
        sequence_tokens = 0
        for item in encoded:
            if isinstance(item, CandidateError):
                continue
            own: set[tuple[int, ...]] = set()
            for measure, span in item.spans.items():
                if span.ids not in own:
                    own.add(span.ids)
                    sequence_tokens += len(span.ids)
                uid = sequences.setdefault(span.ids, len(sequences))
                if uid == len(wanted):
                    wanted.append(set())
                    ranked.append(set())
                wanted[uid].update(range(span.start, span.end))
                if self.rank_clip is not None and measure == RESPONSE_GIVEN_INSTRUCTION:
                    ranked[uid].update(range(span.start, span.end))

        unique = list(sequences)
        trees = build_trees(
            unique,
            max_tree_tokens=max(self.batch_tokens, self.max_length),
            tokens_per_pair=1 / (6 * self.student.d_model),
        )
        node_nll, node_rank, counts = self._run(trees, wanted, ranked, progress)
        location = {member: (t, k) for t, tree in enumerate(trees) for k, member in enumerate(tree.members)}

        def span_values(span: ScoredSpan) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
            tree_index, member = location[sequences[span.ids]]
            nodes = trees[tree_index].paths[member][span.start : span.end]
            return node_nll[tree_index][nodes], node_rank[tree_index][nodes]

        results = [
            self._result(item, span_values) if not isinstance(item, CandidateError) else self._unscored(str(item))
            for item in encoded
        ]
        scored = sum(r.status == "scored" for r in results)
        stats = ScoringStats(
            candidates=len(candidates),
            scored=scored,
            unscored=len(results) - scored,
            sequence_tokens=sequence_tokens,
            computed_tokens=sum(len(t.tokens) for t in trees),
            scored_positions=counts[0],
            attention_pairs=sum(_ancestor_pairs(t) for t in trees),
            batches=counts[1],
            seconds=time.perf_counter() - started,
        )
        return results, stats

    def _run(
        self, trees: list[Tree], wanted: list[set[int]], ranked: list[set[int]], progress: ProgressCallback | None
    ) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.int64]], tuple[int, int]]:
        """Per-node NLL (NaN where not scored) and clipped rank (0 where not ranked) of every tree, plus
        (head positions, batches)."""
        node_nll = [np.full(len(t.tokens), np.nan, dtype=np.float32) for t in trees]
        node_rank = [np.zeros(len(t.tokens), dtype=np.int64) for t in trees]
        # Per tree: the nodes that need a rank, then the other scored nodes. A batch sends all its ranked
        # rows through the head first, so the rank count runs on a leading slice of each chunk only.
        targets: dict[int, tuple[list[int], list[int]]] = {}
        for tree in trees:
            wanted_nodes: set[int] = set()
            ranked_nodes: set[int] = set()
            for member, path in zip(tree.members, tree.paths, strict=True):
                wanted_nodes.update(path[position] for position in wanted[member])
                ranked_nodes.update(path[position] for position in ranked[member])
            targets[id(tree)] = (sorted(ranked_nodes), sorted(wanted_nodes - ranked_nodes))
        tree_index = {id(t): i for i, t in enumerate(trees)}
        plan = plan_batches(trees, self.batch_tokens)
        positions = 0
        device = self.student.device
        autocast_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(self.student.precision)
        with torch.inference_mode():
            for done, group in enumerate(plan, start=1):
                batch = make_batch(group, device)
                # Ranked rows of every tree first, then the rest; the hidden state at a node's parent
                # predicts the node's token.
                order = [
                    (tree, offset, targets[id(tree)][part])
                    for part in (0, 1)
                    for tree, offset in zip(batch.trees, batch.offsets, strict=True)
                ]
                flat_rows = [offset + tree.parents[node] for tree, offset, nodes in order for node in nodes]
                flat_tokens = [tree.tokens[node] for tree, _, nodes in order for node in nodes]
                n_ranked = sum(len(targets[id(tree)][0]) for tree in batch.trees)
                with torch.autocast(
                    device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
                ):
                    hidden = self._base(
                        input_ids=batch.input_ids,
                        position_ids=batch.position_ids,
                        # All ones: nothing is padded (it also keeps transformers from warning about padding).
                        attention_mask=torch.ones_like(batch.input_ids),
                        use_cache=False,
                        **{SEGMENTS_KWARG: batch.segments},
                    ).last_hidden_state
                    nll, ranks = self._token_nll(
                        hidden[0],
                        torch.tensor(flat_rows, device=device),
                        torch.tensor(flat_tokens, device=device),
                        n_ranked,
                    )
                positions += len(flat_rows)
                values = nll.cpu().numpy()
                rank_values = ranks.cpu().numpy()
                offset = 0
                for tree, _, nodes in order:
                    index = tree_index[id(tree)]
                    node_nll[index][nodes] = values[offset : offset + len(nodes)]
                    if offset < n_ranked:
                        node_rank[index][nodes] = rank_values[offset : offset + len(nodes)]
                    offset += len(nodes)
                if progress is not None:
                    progress(done, len(plan))
        return node_nll, node_rank, (positions, len(plan))

    def _token_nll(
        self, hidden: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor, ranked: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of `tokens` given the hidden states at `rows`, the head applied chunk by chunk, and
        the clipped rank of the first `ranked` of them.

        Each chunk's logits go into one reused float32 buffer and the log-sum-exp is taken in place:
        no [tokens x vocabulary] tensor, and no fresh large allocation per chunk (page faults on CPU).
        A rank is 1 + the number of logits strictly greater than the target's, counted before the in-place
        softmax (subtracting the peak could round two distinct logits into a tie).
        """
        weight, bias = self._head.weight, self._head.bias
        vocab = weight.shape[0]
        chunk = max(1, min(rows.shape[0], HEAD_CHUNK_ROWS, HEAD_CHUNK_ELEMENTS // vocab))
        out = torch.empty(rows.shape[0], dtype=torch.float32, device=hidden.device)
        buffer = torch.empty((chunk, vocab), dtype=torch.float32, device=hidden.device)
        above = torch.empty((min(RANK_BLOCK_ROWS, ranked), vocab), dtype=torch.float32, device=hidden.device)
        # Float counts are exact: a vocabulary is far below 2^24.
        counts = torch.empty(ranked, dtype=torch.float32, device=hidden.device)
        for start in range(0, rows.shape[0], chunk):
            picked = hidden.index_select(0, rows[start : start + chunk])
            logits = buffer[: picked.shape[0]]
            if picked.dtype == torch.float32 and weight.dtype == torch.float32:
                torch.mm(picked, weight.t(), out=logits)
                if bias is not None:
                    logits.add_(bias)
            else:
                logits.copy_(self._head(picked))
            target = logits.gather(1, tokens[start : start + chunk, None])
            for block in range(0, min(ranked - start, picked.shape[0]), RANK_BLOCK_ROWS):
                end = min(block + RANK_BLOCK_ROWS, ranked - start, picked.shape[0])
                flags = above[: end - block]
                torch.gt(logits[block:end], target[block:end], out=flags)
                torch.sum(flags, dim=1, out=counts[start + block : start + end])
            peak = logits.amax(dim=1, keepdim=True)
            total = logits.sub_(peak).exp_().sum(dim=1)
            out[start : start + chunk] = peak.squeeze(1) + total.log() - target.squeeze(1)
        ranks = counts.to(torch.int64).add_(1)
        if self.rank_clip is not None:
            ranks.clamp_(max=self.rank_clip)
        return out, ranks

    def _result(self, item: EncodedCandidate, span_values: SpanValues) -> CandidateScores:
        values = {measure: span_values(span) for measure, span in item.spans.items()}
        losses = {measure: float(np.mean(nll, dtype=np.float64)) for measure, (nll, _) in values.items()}
        if not all(math.isfinite(v) for v in losses.values()):
            named = ", ".join(f"L({_SYMBOLS[m]}) = {v}" for m, v in losses.items())
            return self._unscored(f"non-finite loss from the student ({named})")
        nll_a_given_q, nll_a = losses[RESPONSE_GIVEN_INSTRUCTION], losses[RESPONSE]
        if nll_a <= 0.0:
            return self._unscored("L(A) is zero: the IFD loss ratio is undefined")
        rank_mean = rsr = None
        if self.rank_clip is not None:
            token_nll, token_rank = values[RESPONSE_GIVEN_INSTRUCTION]
            surprisal = float(np.sum(token_nll, dtype=np.float64))
            if surprisal <= 0.0:
                return self._unscored("L(A|Q) is zero: the rank-surprisal ratio is undefined")
            rank_mean = float(np.mean(token_rank, dtype=np.float64))
            rsr = float(np.sum(token_rank, dtype=np.float64)) / surprisal
        nll_q, nll_q_given_a = losses.get(INSTRUCTION), losses.get(INSTRUCTION_GIVEN_RESPONSE)
        spans = item.spans
        return CandidateScores(
            status="scored",
            template=self.template_name,
            nll_instruction=nll_q,
            nll_response_given_instruction=nll_a_given_q,
            nll_response=nll_a,
            nll_instruction_given_response=nll_q_given_a,
            ppl_response_given_instruction=math.exp(nll_a_given_q),
            ifd=math.exp(nll_a_given_q - nll_a),
            ifd_loss_ratio=nll_a_given_q / nll_a,
            rifd=None if nll_q is None or nll_q_given_a is None else math.exp(nll_q_given_a - nll_q),
            rank_mean=rank_mean,
            rsr=rsr,
            rank_clip=self.rank_clip,
            n_instruction_tokens=spans[INSTRUCTION].tokens if INSTRUCTION in spans else None,
            n_response_tokens=spans[RESPONSE_GIVEN_INSTRUCTION].tokens,
            n_response_tokens_backward=spans[RESPONSE].tokens,
            n_instruction_tokens_backward=(
                spans[INSTRUCTION_GIVEN_RESPONSE].tokens if INSTRUCTION_GIVEN_RESPONSE in spans else None
            ),
            instruction_truncated=item.truncated,
        )

    def _unscored(self, error: str) -> CandidateScores:
        return CandidateScores(status="unscored", template=self.template_name, error=error)


_SYMBOLS = {INSTRUCTION: "Q", RESPONSE_GIVEN_INSTRUCTION: "A|Q", RESPONSE: "A", INSTRUCTION_GIVEN_RESPONSE: "Q|A"}


def _ancestor_pairs(tree: Tree) -> int:
    """Attention scores a tree needs: each node attends to its depth + 1 ancestors-or-self."""
    return sum(depth + 1 for depth in tree.depths)
