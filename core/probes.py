"""Probe runs, the torch-free part: conditions, budgets and their limits, eval sets, and how answers are read.

A probe run fine-tunes a fresh copy of a job's student for a short budget on each condition (every teacher's
refinements; on request the originals and the union of the teachers; optionally a decision set's retained set)
and measures what it can then do by greedy generation on held-out problems. The API validates and stores what
is here; the probe engine (workers/probing, torch) trains and evaluates with the same definitions.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from core.dataset import ORIGINAL, DatasetError, LimitError, jsonl_objects

# The condition names: `teacher:NAME`, `original`, `union` (every teacher's refinements pooled) and
# `decision_set:ID` (a decision set's retained samples, each with its chosen candidate).
TEACHER_PREFIX = "teacher:"
DECISION_SET_PREFIX = "decision_set:"
UNION = "union"
ConditionKind = Literal["teacher", "original", "union", "decision_set"]

ProbeStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
EvalSource = Literal["uploaded", "held_out"]

# What the default extraction reads: the last `Answer:` line, else the last number of the text. A number is
# digits with an optional sign and decimals; commas count as thousands separators only in groups of three, so
# `1,234` is one number and `1,2,3` three.
ANSWER_MARK = "Answer:"
NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def teacher_condition(teacher: str) -> str:
    """The condition name of one teacher's refinements."""
    return f"{TEACHER_PREFIX}{teacher}"


def decision_set_condition(decision_set_id: int) -> str:
    """The condition name of a decision set's retained set."""
    return f"{DECISION_SET_PREFIX}{decision_set_id}"


def condition_kind(condition: str) -> tuple[ConditionKind, str | None]:
    """(kind, argument) of a condition name: ("teacher", NAME), ("decision_set", "ID"), ("original"|"union", None)."""
    if condition.startswith(TEACHER_PREFIX):
        return "teacher", condition.removeprefix(TEACHER_PREFIX)
    if condition.startswith(DECISION_SET_PREFIX):
        return "decision_set", condition.removeprefix(DECISION_SET_PREFIX)
    if condition == ORIGINAL:
        return "original", None
    if condition == UNION:
        return "union", None
    raise ValueError(f"unknown probe condition {condition!r}")


@dataclass(frozen=True, slots=True)
class ProbeBudget:
    """What each (condition, seed) of a probe run trains and evaluates: identical for every condition.

    Every condition takes the same optimiser steps of the same number of examples (its tokens per step follow
    its responses' lengths, and are reported as the cost). The learning curve is measured every `eval_every`
    steps and at the end.
    """

    # Many small steps: at a fixed token budget a short fine-tune learns more from more, smaller batches, down to 2:
    # 1,500 steps of 1 (the same tokens) put the best teacher first in 5 of 12 experiment seeds against 9 of 12 for
    # 750 x 2, its gradient too noisy at the engine's learning rate. 750 x 2 examples per teacher is under a fifth
    # of the experiment's full fine-tune (4000 x 2, 8,000 examples), the cost share the teacher recommendation is
    # held to (docs/experiment.md measures the budgets behind these defaults).
    steps: int = 750
    batch_size: int = 2
    # None: chosen by the engine for the student and method (workers/probing/student.py `probe_learning_rate`).
    peak_lr: float | None = None
    warmup_steps: int = 10
    # The length of the learning-rate schedule (warm-up, then cosine decay), None: `steps`. Longer than `steps`, the
    # probe runs the first `steps` of that schedule: a prefix of the fine-tune the user plans, in its own regime.
    schedule_steps: int | None = None
    eval_every: int = 150
    seeds: int = 1
    # Held-out samples taken from the job when no eval set is uploaded.
    held_out: int = 64
    # Greedy generation length; None: room for the longest response the condition trains on (`generation_room`),
    # so a teacher whose steps are long is never cut off before its answer (which would favour terse teachers).
    max_new_tokens: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The budget as JSON-ready parameters."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ProbeLimits:
    """The ceilings a probe request must stay under; each refusal names its FRONTIER_* setting."""

    probe_max_steps: int = 5000
    probe_max_batch_size: int = 128
    probe_max_seeds: int = 5
    probe_max_eval_items: int = 2000
    probe_max_new_tokens: int = 1024
    probe_max_conditions: int = 16


DEFAULT_PROBE_LIMITS = ProbeLimits()

# Budget field -> (the limit that bounds it, its smallest allowed value).
_BOUNDED: dict[str, tuple[str | None, int]] = {
    "steps": ("probe_max_steps", 1),
    "batch_size": ("probe_max_batch_size", 1),
    "seeds": ("probe_max_seeds", 1),
    "held_out": ("probe_max_eval_items", 1),
    "max_new_tokens": ("probe_max_new_tokens", 1),
    "warmup_steps": (None, 0),
    "schedule_steps": ("probe_max_steps", 1),
    "eval_every": (None, 1),
}


def follow_up_params(budget: dict[str, Any], contenders: Sequence[str]) -> dict[str, Any] | None:
    """The follow-up of an inconclusive probe run: its own budget for the contenders alone, twice as long.

    With half as many teachers as the run had, it costs what the run cost. None when the run already trained its
    whole learning-rate schedule (a prefix probe at its full length has no longer version of itself).
    """
    steps = int(budget["steps"])
    schedule = budget.get("schedule_steps")
    longer = 2 * steps if schedule is None else min(2 * steps, int(schedule))
    if longer == steps or len(contenders) < 2:
        return None
    params = {name: value for name, value in budget.items() if value is not None}
    return {**params, "steps": longer, "teachers": list(contenders)}


def generation_room(longest_response: int) -> int:
    """The default generation length for a condition whose longest training response has `longest_response` tokens.

    A quarter more than that response (at least 16 tokens more): a student that learnt the format finishes inside
    it, one that rambles is stopped soon after.
    """
    return longest_response + max(16, longest_response // 4)


def setting_name(limit: str) -> str:
    """The environment variable of a limit: probe_max_steps -> FRONTIER_PROBE_MAX_STEPS."""
    return f"FRONTIER_{limit.upper()}"


def parse_budget(params: dict[str, Any] | None, limits: ProbeLimits = DEFAULT_PROBE_LIMITS) -> ProbeBudget:
    """A budget from request parameters (missing ones take the defaults); a bad or over-limit value is refused.

    Over a limit: LimitError naming the FRONTIER_* setting; wrong type, unknown name or non-positive: DatasetError.
    """
    params = dict(params or {})
    known = {field.name for field in fields(ProbeBudget)}
    for name in params:
        if name not in known:
            raise DatasetError(f"unknown budget parameter (expected one of {', '.join(sorted(known))})", field=name)
    values: dict[str, Any] = {}
    for name, value in params.items():
        if name == "peak_lr":
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise DatasetError("expected a number", field=name)
            if not 0 < value <= 1:
                raise DatasetError(f"expected 0 < peak_lr <= 1, got {value}", field=name)
            values[name] = float(value)
            continue
        if name in ("schedule_steps", "max_new_tokens") and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise DatasetError(f"expected an integer, got {type(value).__name__}", field=name)
        limit, minimum = _BOUNDED[name]
        if value < minimum:
            raise DatasetError(f"expected at least {minimum}, got {value}", field=name)
        if limit is not None and value > getattr(limits, limit):
            ceiling = getattr(limits, limit)
            raise LimitError(f"{name} {value:,} is over {ceiling:,}", limit=setting_name(limit), field=name)
        values[name] = value
    if "warmup_steps" not in values:
        # The default warm-up, shortened to a tenth of a budget too short for it (a tiny smoke-test probe).
        default = ProbeBudget()
        values["warmup_steps"] = min(default.warmup_steps, values.get("steps", default.steps) // 10)
    budget = ProbeBudget(**values)
    if budget.warmup_steps >= budget.steps:
        raise DatasetError(f"expected fewer warm-up steps than steps ({budget.steps})", field="warmup_steps")
    if budget.schedule_steps is not None and budget.schedule_steps < budget.steps:
        raise DatasetError(
            f"expected a schedule at least as long as the steps run ({budget.steps}), got {budget.schedule_steps}",
            field="schedule_steps",
        )
    return budget


def check_answer_pattern(pattern: str | None) -> re.Pattern[str] | None:
    """A user's answer regex, compiled (its group, or the whole match, is the answer); refused if not valid."""
    if pattern is None:
        return None
    if not pattern or len(pattern) > 500:
        raise DatasetError("expected a regular expression of 1 to 500 characters", field="answer_pattern")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise DatasetError(f"not a valid regular expression: {exc}", field="answer_pattern") from exc
    if compiled.groups > 1:
        raise DatasetError("expected at most one capturing group (the answer)", field="answer_pattern")
    return compiled


def normalize_answer(answer: str) -> str:
    """An answer as compared: a number without thousands separators, any other text with its spaces collapsed."""
    answer = " ".join(answer.split())
    return answer.replace(",", "") if NUMBER.fullmatch(answer) else answer


def _answer_line(text: str) -> str | None:
    """The rest of the last non-empty `Answer:` line (after the line's last mark), without a final full stop."""
    for piece in reversed(text.split(ANSWER_MARK)[1:]):
        line = piece.split("\n", 1)[0].strip().removesuffix(".").strip()
        if line:
            return line
    return None


def _read_line(line: str) -> str:
    """An answer line as compared: its number when it holds exactly one (`x = 5`, `12 apples`), else all of it.

    So `Answer: 1 2 5 9` (a sorted list), `Answer: 3/4` or `Answer: dcba` are compared whole, not by one number.
    """
    numbers = NUMBER.findall(line)
    return normalize_answer(numbers[0] if len(numbers) == 1 else line)


def extract_answer(text: str, pattern: re.Pattern[str] | None = None) -> str | None:
    """A completion's answer: the user pattern's last match, else the last `Answer:` line (its one number, or the
    whole line), else the text's last number."""
    if pattern is not None:
        found = [match.group(1) if pattern.groups else match.group(0) for match in pattern.finditer(text)]
        return normalize_answer(found[-1]) if found else None
    if (line := _answer_line(text)) is not None:
        return _read_line(line)
    numbers = NUMBER.findall(text)
    return normalize_answer(numbers[-1]) if numbers else None


@dataclass(frozen=True, slots=True)
class EvalItem:
    """A held-out problem: the prompt fields, the exact answer, and a reference response for the held-out loss."""

    instruction: str
    input: str
    answer: str
    # The text whose teacher-forced loss is the curve's `loss` (default: `Answer: <answer>`).
    response: str = ""

    @property
    def reference(self) -> str:
        """The response the held-out loss is measured on."""
        return self.response or f"Answer: {self.answer}"


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One fine-tuning example of a condition: the prompt fields and the response the loss is taken on."""

    instruction: str
    input: str
    response: str


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One point of a learning curve: after `step` optimiser steps, the held-out loss and exact match."""

    step: int
    # Mean teacher-forced loss per token of the eval items' reference responses (None when not measured).
    loss: float | None
    exact_match: float

    def as_dict(self) -> dict[str, Any]:
        """The point as JSON-ready values."""
        return asdict(self)


def eval_items_from_json(rows: Iterable[dict[str, Any]]) -> list[EvalItem]:
    """Stored eval items back as EvalItem (the inverse of `asdict`)."""
    return [EvalItem(**row) for row in rows]


def _eval_row(value: object, line: int) -> EvalItem:
    if not isinstance(value, dict):
        raise DatasetError(f"expected a JSON object, got {type(value).__name__}", line=line)
    for name in value:
        if name not in ("instruction", "input", "answer", "response", "id"):
            raise DatasetError("unknown field (expected instruction, input, answer, response)", line=line, field=name)
    texts: dict[str, str] = {}
    for name, required in (("instruction", True), ("input", False), ("answer", True), ("response", False)):
        raw = value.get(name)
        if raw is None:
            if required:
                raise DatasetError("missing", line=line, field=name)
            texts[name] = ""
            continue
        if name == "answer" and isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            raise DatasetError(f"expected a string, got {type(raw).__name__}", line=line, field=name)
        if required and not raw.strip():
            raise DatasetError("empty", line=line, field=name)
        texts[name] = raw
    return EvalItem(texts["instruction"], texts["input"], normalize_answer(texts["answer"]), texts["response"])


def parse_eval_set(data: bytes, *, max_items: int = DEFAULT_PROBE_LIMITS.probe_max_eval_items) -> list[EvalItem]:
    """An eval set from JSONL or Parquet bytes (instruction, input, answer[, response]); errors name line, field."""
    rows: Sequence[tuple[int, object]]
    if data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DatasetError(f"not a readable Parquet file: {exc}", field="eval_set") from exc
        rows = list(enumerate(table.to_pylist(), start=1))
        unit = "row"
    else:
        rows = list(jsonl_objects(data))
        unit = "line"
    if not rows:
        raise DatasetError("the eval set has no rows", field="eval_set")
    if len(rows) > max_items:
        raise LimitError(
            f"the eval set has {len(rows):,} rows, over {max_items:,}",
            limit=setting_name("probe_max_eval_items"),
            field="eval_set",
        )
    items: list[EvalItem] = []
    for number, value in rows:
        try:
            items.append(_eval_row(value, number))
        except DatasetError as exc:
            raise DatasetError(exc.reason, line=exc.line, field=exc.field, unit=unit) from None
    return items


def mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None where undefined: no values, or one value for the sd)."""
    finite = [value for value in values if value is not None and math.isfinite(value)]
    if not finite:
        return None, None
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return mean, None
    return mean, math.sqrt(sum((value - mean) ** 2 for value in finite) / (len(finite) - 1))
