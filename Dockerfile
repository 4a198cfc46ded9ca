# syntax=docker/dockerfile:1.7
# Three targets from one file:
#   api    - FastAPI + Alembic on a slim Python base: core/, service/, the frontier command (for `frontier
#            migrate`/`keys`) and migrations/. No torch and no worker code (lint forbids service -> workers).
#   ingest - the api image plus workers/: a CPU Celery worker for the ingest queue (parsing and storing big
#            datasets in batches, service.jobs.ingest). Still no torch: ingest never scores.
#   worker - the Celery GPU worker on a CUDA runtime base: core/, service/ (its database layer), workers/ and
#            the frontier command; torch comes from the CUDA wheel index, unpinned to a CPU build (TORCH_INDEX
#            picks the CUDA flavour).
# Build: docker build --target api -t frontier-api .   |   --target ingest   |   --target worker -t frontier-worker .

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS api
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 frontier \
    && mkdir -p /srv/frontier/uploads && chown -R frontier /srv/frontier
WORKDIR /app
# Dependencies first, so code edits do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p core service frontier && touch core/__init__.py service/__init__.py frontier/__init__.py \
    && pip install . && pip uninstall -y frontier-curator
COPY core ./core
COPY service ./service
COPY frontier ./frontier
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install --no-deps -e .
USER frontier
ENV FRONTIER_DATA_DIR=/home/frontier/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["uvicorn", "service.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--proxy-headers"]

FROM api AS ingest
USER root
COPY workers ./workers
RUN pip install --no-deps -e .
USER frontier
# Reads uploads spooled by the API (a shared volume at FRONTIER_UPLOAD_DIR) and datasets under FRONTIER_DATASET_ROOTS.
# Two processes: two ingests at once; each is one batch of records in memory at a time.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD celery -A workers.celery_app inspect ping -d "frontier-ingest@$HOSTNAME" --timeout 5 || exit 1
# The queue is the settings' own (FRONTIER_INGEST_QUEUE, else "<FRONTIER_GPU_QUEUE>.ingest"), as the API routes it.
CMD ["sh", "-c", "exec celery -A workers.celery_app worker -Q \"$(python -c 'from service.settings import get_settings; print(get_settings().ingest_queue_name)')\" -c 2 -P prefork -n frontier-ingest@%h -l INFO"]

FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS worker
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126
ENV DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Ubuntu 24.04's own Python (3.12) satisfies requires-python >= 3.11 without third-party PPAs.
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 10001 frontier
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# The CUDA build of torch first; the worker extra's open `torch>=2.3` range then accepts it as is.
RUN pip install --index-url ${TORCH_INDEX} torch
COPY pyproject.toml README.md ./
RUN mkdir -p core service workers frontier \
    && touch core/__init__.py service/__init__.py workers/__init__.py frontier/__init__.py \
    && pip install ".[worker]" && pip uninstall -y frontier-curator
COPY core ./core
COPY service ./service
COPY workers ./workers
COPY frontier ./frontier
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install --no-deps -e .
USER frontier
# One worker process per GPU (-c 1), one chunk at a time (prefetch 1, acks late: see service/queue.py).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD celery -A workers.celery_app inspect ping -d "frontier@$HOSTNAME" --timeout 5 || exit 1
CMD ["celery", "-A", "workers.celery_app", "worker", "-Q", "gpu", "-c", "1", "-P", "prefork", "-n", "frontier@%h", "-l", "INFO"]
