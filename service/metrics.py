"""Prometheus metrics for `GET /metrics`: jobs by state, candidates and tokens scored, engine time, queue depth,
and request latency.

Job and scoring figures are read from the database at scrape time, so they are right whichever process
(API, any worker) did the work; request latency is observed in this API process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from kombu.exceptions import ChannelError
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from service.db import session_scope
from service.models import Job, JobStatus
from service.queue import get_queue
from service.settings import get_settings

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
REQUEST_LATENCY = Histogram(
    "frontier_http_request_duration_seconds",
    "API request latency by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)


class _StateCollector(Collector):
    """Reads the job and scoring state from the database and the queue depth from the broker."""

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        jobs = GaugeMetricFamily("frontier_jobs", "Jobs by status.", labels=["status"])
        with session_scope() as session:
            counts = {status: n for status, n in session.execute(select(Job.status, func.count()).group_by(Job.status))}
            # Totals kept on the job rows (added once per chunk): one row per job, not a scan of every candidate.
            totals = session.execute(
                select(
                    func.coalesce(func.sum(Job.scored_candidates), 0),
                    func.coalesce(func.sum(Job.scored_tokens), 0),
                    func.coalesce(func.sum(Job.scoring_seconds), 0.0),
                )
            ).one()
        # Postgres sums integers into NUMERIC (Decimal); the exposition wants plain numbers.
        scored, tokens, seconds = int(totals[0]), int(totals[1]), float(totals[2])
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status.value, 0))
        yield jobs
        yield CounterMetricFamily("frontier_candidates_scored", "Candidates with scores.", value=scored)
        yield CounterMetricFamily("frontier_scored_tokens", "Tokens in the scored spans.", value=tokens)
        yield CounterMetricFamily("frontier_scoring_seconds", "Seconds inside the scoring engine.", value=seconds)
        throughput = GaugeMetricFamily(
            "frontier_scoring_tokens_per_second", "Scored tokens per engine second, over all jobs."
        )
        throughput.add_metric([], tokens / seconds if seconds else 0.0)
        yield throughput
        depth = GaugeMetricFamily("frontier_queue_depth", "Chunk tasks waiting on the GPU queue (-1: unreachable).")
        depth.add_metric([], _queue_depth())
        yield depth


def _queue_depth() -> int:
    settings = get_settings()
    try:
        with get_queue(settings).connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(queue=settings.gpu_queue, passive=True)
            return int(declared.message_count)
    except ChannelError:
        return 0  # Redis deletes an empty list: no queue yet means nothing waiting
    except Exception as exc:  # a metrics scrape must not fail because the broker does
        log.warning("queue depth unavailable: %s", exc)
        return -1


REGISTRY.register(_StateCollector())


def render() -> bytes:
    """The current metrics in Prometheus' text format."""
    return generate_latest(REGISTRY)
