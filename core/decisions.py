"""What a policy can decide about a sample: one spelling for the policies, the database, the API and the client."""

from __future__ import annotations

from typing import Literal, get_args

DecisionName = Literal["retained", "rejected", "unscored"]
DECISIONS: tuple[DecisionName, ...] = get_args(DecisionName)
# An export selects one decision, or every sample.
ExportDecision = Literal[DecisionName, "all"]
