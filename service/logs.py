"""Structured logs: one JSON object per line, with the job id (and chunk) wherever a record carries one.

`FRONTIER_LOG_FORMAT=json` switches the API (`frontier serve`) and the workers to it; `text` (default) keeps
the usual human format. Code passes ids with `extra={"job_id": ..., "chunk": ...}`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Record attributes worth a key of their own in the JSON line.
CONTEXT_FIELDS = ("job_id", "chunk", "tenant", "task", "request_id")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, context ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line."""
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr in `log_format` (`json` or `text`)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
