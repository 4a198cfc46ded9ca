"""Weak- vs strong-teacher experiment run end to end through the product (see docs/experiment.md)."""
