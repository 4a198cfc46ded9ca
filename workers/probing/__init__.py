"""The probe engine: fine-tune a fresh copy of a student on one condition and measure its learning curve.

Pure torch + transformers + peft, no queue and no database (docs/probes.md, "Engine"):

from workers.probing import run_probe
outcome = run_probe(student_dir, examples, eval_items, budget=ProbeBudget(), seed=0, template="plain")
outcome.as_dict()   # {"curve": [...], "final": {...}, "cost": {...}, "completions": [...]}

The training loop (workers.probing.training) is imported by the example and experiment student builders,
which must stay light: the engine proper, with torch and transformers, is loaded on first use of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.probing.probe import ProbeCost, ProbeOutcome, run_probe

__all__ = ["ProbeCost", "ProbeOutcome", "run_probe"]


def __getattr__(name: str) -> Any:
    """The engine's public names, imported on first use."""
    if name in __all__:
        from workers.probing import probe

        return getattr(probe, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
