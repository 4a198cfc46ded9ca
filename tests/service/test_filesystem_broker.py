"""The embedded broker never hands a consumer a message that is still being written."""

from __future__ import annotations

import threading
from pathlib import Path
from queue import Empty
from typing import Any

import pytest

from service.filesystem_broker import PARTIAL_SUFFIX, Transport
from service.queue import get_queue
from service.settings import Settings
from tests.services import configure

QUEUE = "race"
N_MESSAGES = 3000


def embedded_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    return configure(monkeypatch, {"FRONTIER_DATA_DIR": str(tmp_path / "data")})


def test_the_embedded_broker_uses_the_atomic_transport(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = embedded_settings(monkeypatch, tmp_path)
    assert settings.embedded_broker
    with get_queue(settings).connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)


def test_a_polling_consumer_reads_every_message_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A consumer polling while the producer writes gets every payload intact, in order, and nothing else."""
    settings = embedded_settings(monkeypatch, tmp_path)
    app = get_queue(settings)
    options = app.conf.broker_transport_options
    # Large payloads widen the window between a file's creation and its last byte, where kombu's own channel
    # exposes an empty or cut message to a consumer.
    padding = "x" * 20_000
    received: list[Any] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def consume() -> None:
        with app.connection_for_read() as connection:
            channel = connection.default_channel
            while len(received) < N_MESSAGES:
                try:
                    received.append(channel._get(QUEUE))
                except Empty:
                    if done.is_set() and not any(Path(options["data_folder_in"]).glob(f"*.{QUEUE}.msg")):
                        return
                except BaseException as exc:  # the failure under test: record it, stop consuming
                    errors.append(exc)
                    return

    consumer = threading.Thread(target=consume)
    consumer.start()
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for index in range(N_MESSAGES):
            channel._put(QUEUE, {"index": index, "padding": padding})
    done.set()
    consumer.join(timeout=120)
    assert not consumer.is_alive()
    assert errors == []
    assert [message["index"] for message in received] == list(range(N_MESSAGES))
    assert all(message["padding"] == padding for message in received)
    assert not list(Path(options["data_folder_out"]).glob(f"*{PARTIAL_SUFFIX}"))


def test_an_unreadable_message_is_set_aside_and_the_next_one_delivered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A damaged message file does not stop the consumer: it is moved out of the queue and the next one is read."""
    settings = embedded_settings(monkeypatch, tmp_path)
    app = get_queue(settings)
    queue_folder = Path(app.conf.broker_transport_options["data_folder_in"])
    processed = Path(app.conf.broker_transport_options["processed_folder"])
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        # Older than anything the channel writes: the consumer meets it first.
        (queue_folder / f"{0:020d}_damaged.{QUEUE}.msg").write_bytes(b'{"index": 0, "pad')
        channel._put(QUEUE, {"index": 1})
        assert channel._get(QUEUE) == {"index": 1}
        with pytest.raises(Empty):
            channel._get(QUEUE)
    assert [path.name for path in processed.iterdir()] == [f"unreadable-{0:020d}_damaged.{QUEUE}.msg"]
    assert list(queue_folder.iterdir()) == []
