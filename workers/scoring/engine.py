"""The scorer: a student's L(Q), L(A|Q), L(A) and L(Q|A) for many candidates, in two causal passes each.

One causal pass over [S; Q; A] gives the unconditional L(Q) on the Q tokens and L(A|Q) on the A tokens; one
over [S; A; Q] gives L(A) and L(Q|A) (Li et al., Cherry LLM, NAACL 2024, and Selective Reflection-Tuning,
ACL Findings 2024, define IFD and r-IFD from these). Across candidates, identical sequences run once and
shared prefixes run once (see packing.py); the output head and cross-entropy are evaluated only at scored
positions, in chunks, with log-sum-exp in float32. The numbers equal a one-candidate-at-a-time reference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from core.scores import Candidate, CandidateScores
from workers.scoring.attention import SEGMENTS_KWARG
from workers.scoring.encoding import CandidateEncoder, CandidateError, EncodedCandidate, ScoredSequence
from workers.scoring.packing import Tree, build_trees, make_batch, plan_batches
from workers.scoring.student import Student
from workers.scoring.templates import SpanTokenizer, resolve_template

# Rows of hidden states sent through the output head at once, instead of materialising [tokens x vocabulary].
# Up to 1024 rows (narrower matmuls run well below peak: 333 rows x 50k vocab reached 145 GFLOP/s against
# 200 for 1024 rows on the 2-core CPU), capped at ~256 MiB of fp32 logits for very large vocabularies.
HEAD_CHUNK_ROWS = 1024
HEAD_CHUNK_ELEMENTS = 1 << 26

# Padded tokens per batch when the caller does not choose. On CPU small batches stay in cache and waste
# less attention on packed rows (gpt2-small on the 2-core CPU: 2048 -> 17.3 s, 4096 -> 19.2 s,
# 8192 -> 26.8 s for the same 48 candidates); a GPU needs large batches to fill its cores.
DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 16384}

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ScoringStats:
    """What one `score` call did: the work a naive two-pass run would do against what was computed."""

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
    be scored (empty span, too long for the student, non-finite loss, template failure) comes back with
    `status="unscored"` and an `error`; no number is ever filled in for it. Results do not depend on the
    batch size or on which other candidates are scored in the same call, beyond float rounding.
    """

    def __init__(
        self,
        student: Student,
        *,
        template: str = "plain",
        batch_tokens: int | None = None,
        max_length: int | None = None,
    ) -> None:
        if batch_tokens is None:
            batch_tokens = DEFAULT_BATCH_TOKENS.get(student.device.type, 8192)
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        self.student = student
        start_token = student.tokenizer.convert_ids_to_tokens(student.start_id)
        self.template = resolve_template(template, student.tokenizer, start_token)
        self.batch_tokens = batch_tokens
        limit = student.identity.max_length if max_length is None else min(max_length, student.identity.max_length)
        self.max_length = limit
        self._encoder = CandidateEncoder(self.template, SpanTokenizer(student.tokenizer), student.start_id, limit)
        self._head = student.model.get_output_embeddings()
        self._base = student.model.base_model

    @property
    def template_name(self) -> str:
        """The template actually used (`plain`, `chat` or `alpaca`), recorded with every result."""
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
        sequence_tokens = 0
        for item in encoded:
            if isinstance(item, CandidateError):
                continue
            for seq in (item.forward, item.backward):
                sequence_tokens += len(seq.ids)
                uid = sequences.setdefault(seq.ids, len(sequences))
                if uid == len(wanted):
                    wanted.append(set())
                wanted[uid].update(range(*seq.q), range(*seq.a))

        unique = list(sequences)
        trees = build_trees(
            unique,
            max_tree_tokens=max(self.batch_tokens, self.max_length),
            tokens_per_pair=1 / (6 * self.student.d_model),
        )
        node_nll, counts = self._run(trees, wanted, progress)
        location = {member: (t, k) for t, tree in enumerate(trees) for k, member in enumerate(tree.members)}

        def span_mean(seq: ScoredSequence, span: tuple[int, int]) -> float:
            tree_index, member = location[sequences[seq.ids]]
            path = trees[tree_index].paths[member]
            values = node_nll[tree_index][path[span[0] : span[1]]]
            return float(np.mean(values, dtype=np.float64))

        results = [
            self._result(item, span_mean) if not isinstance(item, CandidateError) else self._unscored(str(item))
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
        self, trees: list[Tree], wanted: list[set[int]], progress: ProgressCallback | None
    ) -> tuple[list[npt.NDArray[np.float32]], tuple[int, int]]:
        """Per-node NLL for every tree (NaN where not scored), plus (head positions, batches)."""
        node_nll = [np.full(len(t.tokens), np.nan, dtype=np.float32) for t in trees]
        targets: dict[int, list[int]] = {}
        for tree in trees:
            wanted_nodes: set[int] = set()
            for member, path in zip(tree.members, tree.paths, strict=True):
                wanted_nodes.update(path[position] for position in wanted[member])
            targets[id(tree)] = sorted(wanted_nodes)
        tree_index = {id(t): i for i, t in enumerate(trees)}
        plan = plan_batches(trees, self.batch_tokens)
        positions = 0
        device = self.student.device
        autocast_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(self.student.precision)
        with torch.inference_mode():
            for done, group in enumerate(plan, start=1):
                batch = make_batch(group, device)
                # The hidden state at a node's parent predicts the node's token.
                flat_rows = [
                    offset + tree.parents[node]
                    for tree, offset in zip(batch.trees, batch.offsets, strict=True)
                    for node in targets[id(tree)]
                ]
                flat_tokens = [tree.tokens[node] for tree in batch.trees for node in targets[id(tree)]]
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
                    nll = self._token_nll(
                        hidden[0],
                        torch.tensor(flat_rows, device=device),
                        torch.tensor(flat_tokens, device=device),
                    )
                positions += len(flat_rows)
                values = nll.cpu().numpy()
                offset = 0
                for tree in batch.trees:
                    nodes = targets[id(tree)]
                    node_nll[tree_index[id(tree)]][nodes] = values[offset : offset + len(nodes)]
                    offset += len(nodes)
                if progress is not None:
                    progress(done, len(plan))
        return node_nll, (positions, len(plan))

    def _token_nll(self, hidden: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of `tokens` given the hidden states at `rows`, the head applied chunk by chunk.

        Each chunk's logits go into one reused float32 buffer and the log-sum-exp is taken in place:
        no [tokens x vocabulary] tensor, and no fresh large allocation per chunk (page faults on CPU).
        """
        weight, bias = self._head.weight, self._head.bias
        vocab = weight.shape[0]
        chunk = max(1, min(rows.shape[0], HEAD_CHUNK_ROWS, HEAD_CHUNK_ELEMENTS // vocab))
        out = torch.empty(rows.shape[0], dtype=torch.float32, device=hidden.device)
        buffer = torch.empty((chunk, vocab), dtype=torch.float32, device=hidden.device)
        for start in range(0, rows.shape[0], chunk):
            picked = hidden.index_select(0, rows[start : start + chunk])
            logits = buffer[: picked.shape[0]]
            if picked.dtype == torch.float32 and weight.dtype == torch.float32:
                torch.mm(picked, weight.t(), out=logits)
                if bias is not None:
                    logits.add_(bias)
            else:
                logits.copy_(self._head(picked))
            target = logits.gather(1, tokens[start : start + chunk, None]).squeeze(1)
            peak = logits.amax(dim=1, keepdim=True)
            total = logits.sub_(peak).exp_().sum(dim=1)
            out[start : start + chunk] = peak.squeeze(1) + total.log() - target
        return out

    def _result(
        self, item: EncodedCandidate, span_mean: Callable[[ScoredSequence, tuple[int, int]], float]
    ) -> CandidateScores:
        nll_q = span_mean(item.forward, item.forward.q)
        nll_a_given_q = span_mean(item.forward, item.forward.a)
        nll_a = span_mean(item.backward, item.backward.a)
        nll_q_given_a = span_mean(item.backward, item.backward.q)
        losses = (nll_q, nll_a_given_q, nll_a, nll_q_given_a)
        if not all(math.isfinite(v) for v in losses):
            return self._unscored(f"non-finite loss from the student (L(Q), L(A|Q), L(A), L(Q|A) = {losses})")
        if nll_a <= 0.0:
            return self._unscored("L(A) is zero: the IFD loss ratio is undefined")
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
            rifd=math.exp(nll_q_given_a - nll_q),
            n_instruction_tokens=item.forward.q[1] - item.forward.q[0],
            n_response_tokens=item.forward.a[1] - item.forward.a[0],
            n_response_tokens_backward=item.backward.a[1] - item.backward.a[0],
            n_instruction_tokens_backward=item.backward.q[1] - item.backward.q[0],
            instruction_truncated=item.instruction_truncated,
        )

    def _unscored(self, error: str) -> CandidateScores:
        return CandidateScores(status="unscored", template=self.template_name, error=error)


def _ancestor_pairs(tree: Tree) -> int:
    """Attention scores a tree needs: each node attends to its depth + 1 ancestors-or-self."""
    return sum(depth + 1 for depth in tree.depths)
