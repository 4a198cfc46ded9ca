"""A probe request's parameters, checked before anything is written: budget, answer pattern, decision sets, eval set.

One set of rules and messages for the JSON body and the multipart form (`params` plus an `eval_set` file); every
refusal names the field (and the line of an eval set), and a value over a limit names its FRONTIER_* setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from core.dataset import DatasetError, LimitError
from core.probes import (
    EvalItem,
    ProbeBudget,
    ProbeLimits,
    check_answer_pattern,
    parse_budget,
    parse_eval_set,
    setting_name,
)

# The largest id a BIGINT column holds: a bigger one can name no decision set (and would overflow the query).
MAX_ID = 2**63 - 1
OPTIONS = ("answer_pattern", "baselines", "decision_sets", "eval_set", "teachers")
KNOWN = tuple(sorted([*(field.name for field in fields(ProbeBudget)), *OPTIONS]))


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """A checked probe request: the budget, the answer pattern, decision set ids, and the eval set if one was given."""

    budget: ProbeBudget
    answer_pattern: str | None
    decision_sets: tuple[int, ...]
    # None: hold out `budget.held_out` of the job's own samples.
    eval_items: list[EvalItem] | None
    # Whether the `original` and `union` conditions train beside the teachers: off by default, since the teacher
    # recommendation needs only the teachers and the default budget spends a fifth of a fine-tune on each of them.
    baselines: bool = False
    # The teachers to train (empty: every teacher of the job). A follow-up among the contenders of an inconclusive
    # run spends its budget where the first run could not decide.
    teachers: tuple[str, ...] = ()


def parse_probe_request(
    params: dict[str, Any] | None, *, eval_file: bytes | None = None, limits: ProbeLimits
) -> ProbeRequest:
    """Check a probe request's parameters (and its uploaded eval set); DatasetError or LimitError on a bad one."""
    # A null is "not given" (the JSON schema documents every field as nullable): the default applies.
    params = {name: value for name, value in (params or {}).items() if value is not None}
    for name in params:
        if name not in KNOWN:
            raise DatasetError(f"unknown probe parameter (expected one of {', '.join(KNOWN)})", field=name)
    options = {name: params.pop(name) for name in OPTIONS if name in params}
    budget = parse_budget(params, limits)
    pattern = options.get("answer_pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise DatasetError(f"expected a string, got {type(pattern).__name__}", field="answer_pattern")
    check_answer_pattern(pattern)
    rows = options.get("eval_set")
    if rows is not None and eval_file is not None:
        raise DatasetError(
            "give the eval set once: as the uploaded file or in the parameters, not both", field="eval_set"
        )
    eval_items: list[EvalItem] | None = None
    if eval_file is not None:
        eval_items = parse_eval_set(eval_file, max_items=limits.probe_max_eval_items)
    elif rows is not None:
        eval_items = _inline_eval_set(rows, limits)
    baselines = options.get("baselines", False)
    if not isinstance(baselines, bool):
        raise DatasetError(f"expected true or false, got {type(baselines).__name__}", field="baselines")
    return ProbeRequest(
        budget,
        pattern,
        _decision_set_ids(options.get("decision_sets")),
        eval_items,
        baselines,
        _teacher_names(options.get("teachers")),
    )


def _teacher_names(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise DatasetError("expected a non-empty list of teacher names", field="teachers")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise DatasetError(f"expected teacher names (non-empty strings), got {f'{item!r}'[:80]}", field="teachers")
        if item not in names:
            names.append(item)
    return tuple(names)


def _decision_set_ids(value: object) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise DatasetError(f"expected a list of decision set ids, got {type(value).__name__}", field="decision_sets")
    ids: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_ID:
            got = f"{item!r}"[:80]
            raise DatasetError(f"expected decision set ids (positive integers), got {got}", field="decision_sets")
        if item not in ids:
            ids.append(item)
    return tuple(ids)


def _inline_eval_set(rows: object, limits: ProbeLimits) -> list[EvalItem]:
    if not isinstance(rows, list):
        raise DatasetError(f"expected a list of objects, got {type(rows).__name__}", field="eval_set")
    if len(rows) > limits.probe_max_eval_items:
        ceiling = limits.probe_max_eval_items
        raise LimitError(
            f"the eval set has {len(rows):,} items, over {ceiling:,}",
            limit=setting_name("probe_max_eval_items"),
            field="eval_set",
        )
    # The same reader as an uploaded file, one item per line: item N of the list is line N.
    data = b"\n".join(json.dumps(row).encode() for row in rows)
    try:
        return parse_eval_set(data, max_items=limits.probe_max_eval_items)
    except LimitError:
        raise
    except DatasetError as exc:
        raise DatasetError(exc.reason, line=exc.line, field=exc.field or "eval_set", unit="eval_set item") from None
