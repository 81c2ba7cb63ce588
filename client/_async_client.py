"""The asyncio client: the same calls as `Client`, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Self, TypeVar

import httpx

from client._client import (
    DEFAULT_TIMEOUT,
    PREDICT_PATH,
    as_client_error,
    client_options,
    parse_prediction,
    request_options,
    sha256,
)
from client._exceptions import ClientError
from client._images import ImageInput, read_image
from client._models import Outcome, Prediction
from client._retry import Deadline, RetryPolicy

T = TypeVar("T", bound=ImageInput)


async def _read(image: ImageInput, content_type: str | None = None) -> tuple[bytes, str]:
    if isinstance(image, bytes | bytearray | memoryview):
        return read_image(image, content_type)
    return await asyncio.to_thread(read_image, image, content_type)  # file I/O off the event loop


class AsyncClient:
    """Scores chest radiographs with the gateway at `base_url`, from asyncio code. Use one per event loop, ideally
    as `async with AsyncClient(url) as client: ...`. Options as for `Client`; `transport` may be
    `httpx.ASGITransport(app)` to call an ASGI app in-process."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(transport=transport, **client_options(base_url, api_key, timeout))

    async def predict(
        self, image: ImageInput, *, operating_point: str | None = None, content_type: str | None = None
    ) -> Prediction:
        """Score one image: a path, its bytes, or a binary file. Raises a `ClientError` on failure."""
        data, kind = await _read(image, content_type)
        return await self._predict_bytes(data, kind, operating_point)

    async def predict_many(
        self, items: Iterable[T], *, concurrency: int = 8, operating_point: str | None = None
    ) -> AsyncIterator[Outcome[T]]:
        """Score many images, at most `concurrency` requests at a time, yielding an `Outcome` per item as each
        completes (not in input order). Failures are yielded, not raised."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        pending: set[asyncio.Task[Outcome[T]]] = set()
        try:
            for item in items:
                pending.add(asyncio.create_task(self._outcome(item, operating_point)))
                if len(pending) >= concurrency:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        yield task.result()
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield task.result()
        finally:  # the caller stopped early: do not leave requests running
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _outcome(self, item: T, operating_point: str | None) -> Outcome[T]:
        try:
            data, kind = await _read(item)
        except OSError as exc:
            return Outcome(item, error=exc)
        digest = sha256(data)
        try:
            return Outcome(item, await self._predict_bytes(data, kind, operating_point), sha256=digest)
        except ClientError as exc:
            return Outcome(item, error=exc, sha256=digest)

    async def _predict_bytes(self, data: bytes, content_type: str, operating_point: str | None) -> Prediction:
        deadline, failures = Deadline(self.retry), 0
        while True:
            try:
                return await self._attempt(data, content_type, operating_point)
            except ClientError as exc:
                failures += 1
                delay = deadline.next_delay(failures, exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _attempt(self, data: bytes, content_type: str, operating_point: str | None) -> Prediction:
        try:
            response = await self._http.post(PREDICT_PATH, **request_options(data, content_type, operating_point))
        except httpx.TransportError as exc:
            raise as_client_error(exc) from exc
        return parse_prediction(response)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
