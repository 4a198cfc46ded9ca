"""The embedded broker: kombu's filesystem transport, with each message written whole before it can be taken.

kombu's filesystem channel creates a message file under its final name and then writes it, while a consumer that
polls the folder moves and reads any file with that name at once, without the writer's lock. A poll that lands
between the two reads an empty message and the worker dies on `JSONDecodeError` (kombu issue #1551); it happened
to `make experiment` on 2026-12-04, one message in a few thousand, on a 2-core machine. Here the producer writes
to a name the consumer ignores and renames the file into place, which is atomic within one folder, so a consumer
sees a whole message or none; a producer that dies mid-write leaves only an ignored `.part` file. A message that
still cannot be decoded (written by something else, or damaged on disk) is set aside in the processed folder
rather than taken down the worker that reads it: its work is re-sent by the sweep like any lost message.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from queue import Empty
from time import monotonic_ns
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

# Celery's `broker_transport` setting takes this path; it wins over the scheme of the `filesystem://` URL.
TRANSPORT = "service.filesystem_broker:Transport"
PARTIAL_SUFFIX = ".part"
TAKEN_SUFFIX = ".taken"
UNREADABLE_PREFIX = "unreadable-"

log = logging.getLogger(__name__)


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

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        """The oldest whole message of `queue`; unreadable ones are set aside. Raises `Empty` when there is none."""
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            path = os.path.join(self.data_folder_in, name)
            taken = path + TAKEN_SUFFIX
            try:
                # Claiming by rename is atomic: of several consumers polling one folder, exactly one gets the file.
                os.replace(path, taken)
            except FileNotFoundError:
                continue
            try:
                with open(taken, "rb") as handle:
                    raw = handle.read()
                message = loads(raw.decode())  # type: ignore[no-untyped-call]
            except (OSError, ValueError):
                aside = os.path.join(self.processed_folder, UNREADABLE_PREFIX + name)
                shutil.move(taken, aside)
                log.error("the embedded queue set aside a message it cannot read: %s", aside)
                continue
            if self.store_processed:
                shutil.move(taken, os.path.join(self.processed_folder, name))
            else:
                os.remove(taken)
            return message
        raise Empty()


class Transport(filesystem.Transport):
    """kombu's filesystem transport with atomic message files and a consumer that sets unreadable ones aside."""

    Channel = Channel
