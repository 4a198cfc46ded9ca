"""Curation jobs: creation, chunked scoring bookkeeping, decisions, sample queries and exports."""
