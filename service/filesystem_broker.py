"""The embedded broker: kombu's filesystem transport, with each message written whole before it can be taken.

kombu's filesystem channel creates a message file under its final name and then writes it, while a consumer that
polls the folder moves and reads any file with that name at once, without the writer's lock. A poll that lands
between the two reads an empty message and the worker dies on `JSONDecodeError` (kombu issue #1551); it happened
to `make experiment` on 2026-12-04, one message in a few thousand, on a 2-core machine. Here the producer writes
to a name the consumer ignores and renames the file into place, which is atomic within one folder, so a consumer
sees a whole message or none; a producer that dies mid-write leaves only an ignored `.part` file.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic_ns
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

# Celery's `broker_transport` setting takes this path; it wins over the scheme of the `filesystem://` URL.
TRANSPORT = "service.filesystem_broker:Transport"
PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    """A filesystem channel whose messages appear in the queue folder only once they are complete."""

    # kombu's two bases name the second parameter differently (`message`, `payload`): no signature satisfies both.
    def _put(self, queue: Any, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Write `message` beside the queue under a name no consumer takes, then rename it into the queue."""
        # kombu's naming, with the clock in zero-padded nanoseconds rather than milliseconds: the consumer takes files
        # in name order, so one producer's messages now come out in the order it sent them.
        name = f"{monotonic_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL_SUFFIX
        try:
            with open(partial, "wb") as handle:
                handle.write(dumps(message).encode())  # type: ignore[no-untyped-call]
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    """kombu's filesystem transport with atomic message files."""

    Channel = Channel
