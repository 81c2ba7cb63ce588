"""A STOW-RS request body (`multipart/related`, RFC 2046) streamed into files: each part's content goes to a file of
its own on the spool's disk as it arrives, so a study of several 40 MB instances is never held in memory. Parsed
by python-multipart's MultipartParser; the files are written in a worker thread, about a MiB at a time.

A disk that fails or fills (less than the reserve left, `Spool.check_space`) stops the writing but not the reading:
the rest of the body is read and dropped, so the sender gets its answer (503 with Retry-After) on a clean
connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import anyio.to_thread
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from serving import errors
from serving.dicomweb.stow import DICOM

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FLUSH_BYTES = 1024 * 1024
"""Received bytes handed to the parser (and the files) at once, in a thread."""
SPACE_CHECK_BYTES = 16 * 1024 * 1024
"""The spool's free space is checked again after this many bytes are written."""


class PartFiles:
    """MultipartParser callbacks that write each part to a new file from `new_file()`."""

    def __init__(self, new_file: Callable[[], Path], check_space: Callable[[int], None]) -> None:
        self.new_file, self.check_space = new_file, check_space
        self.paths: list[Path] = []
        self.ended = False
        self.disk_error: OSError | None = None
        self._handle: BinaryIO | None = None
        self._header = [b"", b""]
        self._headers: list[tuple[bytes, bytes]] = []
        self._written = self._checked = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin, "on_header_field": self._field, "on_header_value": self._value,
            "on_header_end": self._header_end, "on_headers_finished": self._headers_finished,
            "on_part_data": self._data, "on_part_end": self._close, "on_end": self._end,
        }

    def _begin(self) -> None:
        self._header, self._headers = [b"", b""], []

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._header[0], self._header[1]))
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        for name, value in self._headers:
            media = value.decode("latin-1").split(";")[0].strip().lower()
            if name.strip().lower() == b"content-type" and media != DICOM:
                raise errors.UnsupportedMediaType(f"a part is {media!r}; each part must be {DICOM}")
        if self.disk_error is None:
            path = self.new_file()
            self.paths.append(path)
            self._guard(lambda: setattr(self, "_handle", path.open("wb")))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._handle is None:
            return
        handle = self._handle
        self._guard(lambda: handle.write(data[start:end]))
        self._written += end - start
        if self._written - self._checked >= SPACE_CHECK_BYTES:
            self._checked = self._written
            self._guard(lambda: self.check_space(0))

    def _guard(self, write: Callable[[], object]) -> None:
        """Runs a file operation; a disk error stops all writing (the body is still read to its end)."""
        if self.disk_error is not None:
            return
        try:
            write()
        except OSError as exc:
            self.disk_error = exc
            self._close()

    def _close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None

    def _end(self) -> None:
        self.ended = True

    def discard(self) -> None:
        self._close()
        for path in self.paths:
            path.unlink(missing_ok=True)


async def receive_parts(
    body: AsyncIterator[bytes], boundary: str, new_file: Callable[[], Path], check_space: Callable[[int], None]
) -> list[Path]:
    """The parts' files, in order. 400 for broken framing or no part, 415 for a part of another type; OSError
    (after the whole body was read) when the spool's disk failed or filled. The caller removes the files."""
    files = PartFiles(new_file, check_space)
    parser = MultipartParser(boundary, files.callbacks())

    def feed(chunk: bytes) -> None:
        try:
            parser.write(chunk)
        except MultipartParseError:
            raise errors.BadRequest("malformed multipart body: broken framing") from None

    pending = bytearray()
    try:
        async for chunk in body:
            pending += chunk
            if len(pending) >= FLUSH_BYTES:
                await anyio.to_thread.run_sync(feed, bytes(pending))
                pending.clear()
        await anyio.to_thread.run_sync(feed, bytes(pending))
        files._close()
        if files.disk_error is not None:
            raise files.disk_error
        if not files.ended:
            raise errors.BadRequest("malformed multipart body: no close delimiter")
        if not files.paths:
            raise errors.BadRequest("the multipart body has no part")
    except BaseException:
        files.discard()
        raise
    return files.paths
