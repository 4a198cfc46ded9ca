"""Probe runs: a short fine-tune of a job's student per condition, measured on held-out or uploaded problems."""
