"""The prompt templates a job may name: defined here once for the API, the CLI, the client and the engine.

What each one renders is the engine's business (workers/scoring/templates.py, docs/scoring.md); everything
at the edge only needs the names, to refuse an unknown one before a job exists. `plain`, `chat` and `alpaca` are
the engine's own two-pass templates; `cherry`, `reflection` and `superfiltering` reproduce the published
scoring rules of Cherry LLM, Selective Reflection-Tuning and Superfiltering exactly.
"""

from __future__ import annotations

from typing import Literal, get_args

from core.errors import InputError

TemplateName = Literal["plain", "chat", "alpaca", "cherry", "reflection", "superfiltering"]
TEMPLATES: tuple[TemplateName, ...] = get_args(TemplateName)
DEFAULT_TEMPLATE: TemplateName = "plain"


class UnknownTemplateError(InputError):
    """A template name the engine does not know."""


def check_template(name: str, *, field: str = "template") -> TemplateName:
    """`name` as a known template, or UnknownTemplateError listing the allowed names."""
    for known in TEMPLATES:
        if name == known:
            return known
    raise UnknownTemplateError(f"unknown template {name!r}: expected one of {', '.join(TEMPLATES)}", field=field)
