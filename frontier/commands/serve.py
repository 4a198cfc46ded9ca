"""`frontier serve`: the HTTP API, plus a local worker when the broker is the embedded one."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any


class _TerminatedError(Exception):
    """SIGTERM arrived: uvicorn has shut down and re-raised it; unwind so the local worker is stopped too."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _TerminatedError


def register(subparsers: Any) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the API (OpenAPI at /docs); embedded default: SQLite + a local worker, nothing to install",
    )
    parser.add_argument("--host", default=None, help="bind address (default FRONTIER_API_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default FRONTIER_API_PORT, 8000)")
    worker = parser.add_mutually_exclusive_group()
    worker.add_argument("--worker", dest="worker", action="store_true", default=None, help="start a local worker")
    worker.add_argument("--no-worker", dest="worker", action="store_false", help="do not start a local worker")
    parser.add_argument(
        "--migrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply migrations first (default: only for the embedded SQLite database)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Migrate (embedded), start the local worker (embedded broker), serve until interrupted."""
    import uvicorn

    from service import migrate
    from service.auth import LOOPBACK_HOSTS
    from service.logs import configure as configure_logs
    from service.settings import get_settings
    from workers.local import local_worker

    settings = get_settings()
    embedded_db = settings.database_dsn.startswith("sqlite")
    if args.migrate or (args.migrate is None and embedded_db):
        migrate.upgrade()
    start_worker = settings.embedded_broker if args.worker is None else args.worker
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    if not settings.auth_required:
        if host not in LOOPBACK_HOSTS:
            print(
                f"frontier: refusing to serve on {host} without API keys: anyone who can reach it could read and "
                "cancel every job. Set FRONTIER_AUTH=keys (and create keys with `frontier keys create`) or bind "
                "to 127.0.0.1.",
                file=sys.stderr,
            )
            return 2
        print(
            "frontier: authentication is off (FRONTIER_AUTH=none or the embedded default): no API keys, every "
            f"request acts as the local tenant; serving on loopback ({host}) only",
            file=sys.stderr,
        )
    print(
        f"frontier: database {'embedded SQLite under ' + str(settings.data_dir) if embedded_db else 'external'}, "
        f"broker {'embedded' if settings.embedded_broker else 'external'}, "
        f"local worker {'on' if start_worker else 'off'}; API at http://{host}:{port} (docs: /docs)",
        file=sys.stderr,
    )
    # JSON logs: our root handler for everything, uvicorn's included (its own config would print text).
    log_config: dict[str, Any] | None = uvicorn.config.LOGGING_CONFIG
    if settings.log_format == "json":
        configure_logs("json")
        log_config = None
    if not start_worker:
        uvicorn.run("service.app:create_app", factory=True, host=host, port=port, log_config=log_config)
        return 0
    # uvicorn handles SIGTERM itself (graceful shutdown), then re-raises it under the handler that was in place
    # before it started. With the default handler that kills the process before the `with` below can stop
    # the worker child, which would outlive us (an orphan still consuming the queue). Raising instead unwinds.
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with local_worker(settings):
            uvicorn.run("service.app:create_app", factory=True, host=host, port=port, log_config=log_config)
    except _TerminatedError:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
