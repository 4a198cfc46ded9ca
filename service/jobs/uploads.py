"""Dataset uploads streamed to disk as they arrive: never held whole in memory, hashed on the way, size-capped.

`spool_multipart` parses a `multipart/form-data` request body as it streams in (python-multipart's push parser):
the part named `file` goes straight into a new file under the upload folder (SHA-256 and size counted on the way,
refused as soon as it passes FRONTIER_MAX_UPLOAD_BYTES), the text fields are kept. Whatever goes wrong (a client
that disconnects, a malformed body, an upload over the limit) removes the file before the error leaves.

`parse_inline` says whether a spooled dataset is small enough, once decoded, to be parsed inside the request
(FRONTIER_SYNC_INGEST_BYTES): plain JSONL by its size, gzip JSONL by the size it decompresses to (counted in
bounded memory), Parquet by its footer's uncompressed size.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from anyio import to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from core.dataset import GZIP_MAGIC, DatasetError, DatasetFormat, LimitError, Limits
from core.files import spool_path

if TYPE_CHECKING:  # defined only for type checkers
    from python_multipart.multipart import MultipartCallbacks

UPLOAD_FIELD = "file"
# Text fields (student, policy, params, ...) are small; together they may not pass this, nor be more than this many.
MAX_TEXT_BYTES = 1024 * 1024
MAX_PARTS = 64
# File data is written (and hashed) off the event loop in blocks of about this size.
WRITE_BLOCK = 1024 * 1024
# Decompression while sizing a gzip upload reads and inflates this much at a time.
INFLATE_BLOCK = 1024 * 1024


def too_large(size: int, limit: int) -> LimitError:
    """The refusal of an upload over FRONTIER_MAX_UPLOAD_BYTES."""
    return LimitError(f"the upload is {size:,} bytes, over {limit:,}", limit="FRONTIER_MAX_UPLOAD_BYTES")


@dataclass(frozen=True, slots=True)
class SpooledUpload:
    """An uploaded dataset on disk (`path`, owned by the caller from now on) and the form's text fields."""

    path: Path
    filename: str
    size: int
    sha256: str
    fields: dict[str, str]


@dataclass(slots=True)
class _Part:
    name: str = ""
    filename: str | None = None
    is_upload: bool = False
    text: bytearray = field(default_factory=bytearray)


class _Receiver:
    """python-multipart's callbacks: text fields kept, the upload's bytes queued for the file, limits enforced."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.size = 0
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.ended = False
        self._parts = 0
        self._text_bytes = 0
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise DatasetError(f"the form has more than {MAX_PARTS} parts")
        self._part = _Part()
        self._disposition = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise DatasetError("a form part has no name (Content-Disposition)")
        part = self._part
        part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            part.filename = options[b"filename"].decode("utf-8", "replace")
        if part.name == UPLOAD_FIELD and part.filename is not None:
            if self.filename is not None:
                raise DatasetError("expected one dataset file, got two", field=UPLOAD_FIELD)
            part.is_upload, self.filename = True, part.filename

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.is_upload:
            self.size += end - start
            if self.size > self.max_bytes:
                raise too_large(self.size, self.max_bytes)
            self.pending.append(data[start:end])
            self.pending_bytes += end - start
        elif part.filename is None:
            self._text_bytes += end - start
            if self._text_bytes > MAX_TEXT_BYTES:
                raise DatasetError(f"the form's text fields are over {MAX_TEXT_BYTES:,} bytes", field=part.name)
            part.text += data[start:end]
        else:  # another file than the dataset: not stored, but its bytes count against the upload limit
            self.size += end - start
            if self.size > self.max_bytes:
                raise too_large(self.size, self.max_bytes)

    def _on_part_end(self) -> None:
        part = self._part
        if part.filename is None and not part.is_upload:
            try:
                self.fields.setdefault(part.name, part.text.decode("utf-8"))
            except UnicodeDecodeError:
                raise DatasetError("invalid UTF-8", field=part.name) from None

    def _on_end(self) -> None:
        self.ended = True

    def take(self) -> bytes:
        """The file bytes received since the last call."""
        block = b"".join(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        return block


def _write(handle: BinaryIO, digest: hashlib._Hash, block: bytes) -> None:
    handle.write(block)
    digest.update(block)


async def spool_multipart(
    stream: AsyncIterator[bytes], content_type: str, folder: Path, *, max_bytes: int
) -> SpooledUpload:
    """Stream a multipart body into a new file under `folder`; the file is removed if anything goes wrong.

    Raises DatasetError (a malformed body, no `file` part), LimitError (FRONTIER_MAX_UPLOAD_BYTES), and lets
    the client's disconnect (starlette.requests.ClientDisconnect) through.
    """
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise DatasetError("the multipart body has no boundary (Content-Type)")
    receiver = _Receiver(max_bytes)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())
    except FormParserError as exc:
        raise DatasetError(f"not a valid multipart body: {exc}") from exc
    await to_thread.run_sync(lambda: folder.mkdir(parents=True, exist_ok=True))
    path = spool_path(folder)
    digest = hashlib.sha256()
    handle = await to_thread.run_sync(open, path, "xb")
    try:
        try:
            async for chunk in stream:
                parser.write(chunk)
                if receiver.pending_bytes >= WRITE_BLOCK:
                    await to_thread.run_sync(_write, handle, digest, receiver.take())
            parser.finalize()
        except FormParserError as exc:
            raise DatasetError(f"not a valid multipart body: {exc}") from exc
        if not receiver.ended:
            raise DatasetError("the multipart body ended before its closing boundary")
        if receiver.filename is None:
            raise DatasetError("missing: upload the dataset as the multipart field 'file'", field=UPLOAD_FIELD)
        await to_thread.run_sync(_write, handle, digest, receiver.take())
        await to_thread.run_sync(handle.close)
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    return SpooledUpload(path, receiver.filename, receiver.size, digest.hexdigest(), receiver.fields)


def read_head(path: Path, size: int = 4) -> bytes:
    """The first bytes of a file (its magic)."""
    with path.open("rb") as handle:
        return handle.read(size)


def parse_inline(path: Path, fmt: DatasetFormat, *, bound: int, limits: Limits) -> bool:
    """Whether a dataset file decodes to at most `bound` bytes, so the request may parse it in memory.

    A gzip file is inflated in blocks and counted, never held: one that passes FRONTIER_MAX_DATASET_BYTES
    before `bound` is refused at once (LimitError), as the parser would. A file that cannot be decoded is
    parsed inline when small, so its error is the parser's own, in the response.
    """
    size = path.stat().st_size
    if size > bound:
        return False
    head = read_head(path)
    if fmt == "parquet":
        return _parquet_decoded_bytes(path) <= bound
    if head[:2] != GZIP_MAGIC:
        return True
    inflated = _inflated_bytes(path, min(bound, limits.max_dataset_bytes) + 1)
    if inflated > limits.max_dataset_bytes:
        raise LimitError(
            f"the dataset decompresses to more than {limits.max_dataset_bytes:,} bytes",
            limit=Limits.setting("max_dataset_bytes"),
        )
    return inflated <= bound


def _inflated_bytes(path: Path, stop: int) -> int:
    """Bytes a gzip file inflates to, counted up to `stop` (0 for a damaged file: the parser names its fault)."""
    inflater = zlib.decompressobj(wbits=31)
    total = 0
    try:
        with path.open("rb") as handle:
            while total < stop and (block := handle.read(INFLATE_BLOCK)):
                data = inflater.decompress(block, stop - total)
                total += len(data)
                while inflater.unconsumed_tail and total < stop:
                    total += len(inflater.decompress(inflater.unconsumed_tail, stop - total))
                if inflater.eof:
                    break
    except zlib.error:
        return 0
    return total


def _parquet_decoded_bytes(path: Path) -> int:
    """The uncompressed size of a Parquet file's row groups, from its footer (0 when unreadable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError):
        return 0
    return sum(metadata.row_group(index).total_byte_size for index in range(metadata.num_row_groups))


def remove(path: Path) -> None:
    """Delete a spooled upload (already gone is fine)."""
    path.unlink(missing_ok=True)
