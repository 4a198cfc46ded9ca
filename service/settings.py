"""One settings object for the API, the workers and the CLI, read from `FRONTIER_*` environment variables.

With nothing set, everything runs embedded under `data_dir`: a SQLite database and a filesystem broker
that a local worker process consumes, so one machine needs no Postgres and no Redis. Production sets
`FRONTIER_DATABASE_URL=postgresql+psycopg://...` and `FRONTIER_BROKER_URL=redis://...`; the code paths are
the same.
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.dataset import DEFAULT_LIMITS, Limits
from core.probes import DEFAULT_PROBE_LIMITS, ProbeLimits
from core.scores import DEFAULT_RANK_CLIP, MAX_RANK_CLIP
from core.templates import DEFAULT_TEMPLATE, TemplateName


class Settings(BaseSettings):
    """Deployment configuration; every field maps to `FRONTIER_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="FRONTIER_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".frontier")
    # None means the embedded default under data_dir; a SecretStr because production DSNs carry passwords.
    database_url: SecretStr | None = None
    broker_url: SecretStr | None = None

    # Student checkpoints must resolve inside one of these; None allows any local path (embedded use).
    student_roots: list[Path] | None = None
    # Datasets given by reference (`{"dataset": {"path": ...}}`) must resolve inside one of these; None refuses
    # references on a deployment with FRONTIER_DATABASE_URL set and allows any local path on the embedded one.
    dataset_roots: list[Path] | None = None
    default_policy: str = "reflection"
    template: TemplateName = DEFAULT_TEMPLATE
    # The clip r of the token ranks behind rank_mean and rsr when a job names none (arXiv 2601.14249 uses 100).
    rank_clip: int = Field(default=DEFAULT_RANK_CLIP, ge=1, le=MAX_RANK_CLIP)

    # Samples per chunk task: small enough that a lost worker repeats little (on a GPU, 128 samples are about a
    # second of scoring), large enough that the ~20-40 ms of queue and database work per chunk stays small.
    chunk_size: int = Field(default=128, ge=1, le=100_000)
    batch_tokens: int | None = Field(default=None, ge=64)
    # Stuck work (service.jobs.recovery): a chunk running this long without a result, or queued this long without
    # being started, is re-queued. It must exceed the slowest chunk, student load included.
    chunk_timeout_s: float = Field(default=1800.0, gt=0)
    # Starts of one chunk before its job fails (a worker that dies on it every time must not loop forever).
    max_chunk_attempts: int = Field(default=5, ge=1)
    # How often each worker sweeps for stuck work; 0 turns the worker's sweeper off (`frontier sweep` remains).
    sweep_interval_s: float = Field(default=60.0, ge=0)
    # "json": one JSON object per log line with job ids (service.logs), for log pipelines; "text" for people.
    log_format: Literal["text", "json"] = "text"
    # Reuse scores across jobs (same candidate texts, student fingerprint, template and scoring version).
    score_cache: bool = True
    device: str = "auto"
    dtype: str = "auto"
    gpu_queue: str = "gpu"
    # Where ingest tasks (parsing and storing a big dataset) go; None: "<gpu_queue>.ingest". A CPU worker consumes
    # it in production (compose's `ingest` service); the embedded worker consumes both.
    ingest_queue: str | None = None
    # Uploads are spooled here (never held whole in memory) and read by the ingest task: a volume the API and the
    # ingest worker share. None: `<data_dir>/uploads`.
    upload_dir: Path | None = None
    # Uploads up to this size are parsed and stored inside the request (a bad file is a 422, as before); larger
    # ones are accepted at once as an `ingesting` job and stored by an ingest task.
    sync_ingest_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    # Records parsed and stored per ingest transaction (and so the granularity of chunk tasks starting early).
    ingest_batch_records: int = Field(default=5000, ge=1)

    # "keys": every /v1 request needs an API key (`frontier keys create`); "none": no keys, every caller is
    # the local tenant, and `frontier serve` refuses a non-loopback address. Default: "none" on the embedded
    # deployment (no FRONTIER_DATABASE_URL), "keys" otherwise.
    auth: Literal["keys", "none"] | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Uploads stream to disk (upload_folder), never whole into memory, so this bounds disk, not RAM: the default
    # matches FRONTIER_MAX_DATASET_BYTES, the most a dataset may decode to.
    max_upload_bytes: int = Field(default=4 * 1024 * 1024 * 1024, ge=1)
    # Dataset limits (core.dataset.Limits): each refusal names its FRONTIER_* variable.
    max_records: int = Field(default=DEFAULT_LIMITS.max_records, ge=1)
    max_record_bytes: int = Field(default=DEFAULT_LIMITS.max_record_bytes, ge=1)
    max_candidates_per_sample: int = Field(default=DEFAULT_LIMITS.max_candidates_per_sample, ge=1)
    max_text_chars: int = Field(default=DEFAULT_LIMITS.max_text_chars, ge=1)
    max_json_depth: int = Field(default=DEFAULT_LIMITS.max_json_depth, ge=4)
    max_dataset_bytes: int = Field(default=DEFAULT_LIMITS.max_dataset_bytes, ge=1)
    page_limit_max: int = 500
    # Probe runs (core.probes.ProbeLimits): each refusal names its FRONTIER_PROBE_MAX_* variable.
    probe_max_steps: int = Field(default=DEFAULT_PROBE_LIMITS.probe_max_steps, ge=1)
    probe_max_batch_size: int = Field(default=DEFAULT_PROBE_LIMITS.probe_max_batch_size, ge=1)
    probe_max_seeds: int = Field(default=DEFAULT_PROBE_LIMITS.probe_max_seeds, ge=1)
    probe_max_eval_items: int = Field(default=DEFAULT_PROBE_LIMITS.probe_max_eval_items, ge=1)
    probe_max_new_tokens: int = Field(default=DEFAULT_PROBE_LIMITS.probe_max_new_tokens, ge=1)
    probe_max_conditions: int = Field(default=DEFAULT_PROBE_LIMITS.probe_max_conditions, ge=1)
    # A probe's request (its eval set of at most FRONTIER_PROBE_MAX_EVAL_ITEMS problems) is read whole into memory,
    # so it has its own cap rather than the dataset upload's.
    probe_max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # Students with more parameters than this train a LoRA adapter in a probe instead of every weight.
    probe_lora_above_params: int = Field(default=400_000_000, ge=0)
    # A running probe task with no new curve point for this long lost its worker: the sweep re-queues it. It must
    # exceed the slowest stretch between two curve points (student load, eval_every steps and an evaluation).
    probe_timeout_s: float = Field(default=3600.0, gt=0)
    # Starts of one probe task before it fails (and with it the run), so a task that kills its worker cannot loop.
    probe_max_attempts: int = Field(default=3, ge=1)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def auth_required(self) -> bool:
        """Whether /v1 requests must carry an API key."""
        return self.auth == "keys" if self.auth is not None else self.database_url is not None

    @property
    def limits(self) -> Limits:
        """The dataset limits these settings set."""
        return Limits(**{limit.name: getattr(self, limit.name) for limit in fields(Limits)})

    @property
    def probe_limits(self) -> ProbeLimits:
        """The probe-run limits these settings set."""
        return ProbeLimits(**{limit.name: getattr(self, limit.name) for limit in fields(ProbeLimits)})

    @property
    def ingest_queue_name(self) -> str:
        """The queue of ingest tasks."""
        return self.ingest_queue or f"{self.gpu_queue}.ingest"

    @property
    def upload_folder(self) -> Path:
        """Where uploads are spooled before they are ingested."""
        return self.upload_dir.expanduser().resolve() if self.upload_dir is not None else self.data_dir / "uploads"

    @property
    def database_dsn(self) -> str:
        """The SQLAlchemy URL of the database (a SQLite file under data_dir unless set)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'frontier.sqlite3'}"

    @property
    def broker_dsn(self) -> str:
        """The Celery broker URL (a filesystem queue under data_dir unless set)."""
        if self.broker_url is not None:
            return self.broker_url.get_secret_value()
        return "filesystem://"

    @property
    def broker_folder(self) -> Path:
        """Where the embedded filesystem broker keeps its messages."""
        return self.data_dir / "broker"

    @property
    def embedded_broker(self) -> bool:
        """True when the broker is the embedded filesystem queue (a local worker must consume it)."""
        return self.broker_dsn.startswith("filesystem://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
