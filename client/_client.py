"""The synchronous client, and what it shares with the async one: one request per image to `POST /v1/predict`,
the image as the raw body with its content type (no file name leaves the machine)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from client._exceptions import ClientError, Timeout, TransportError, error_from_response
from client._images import ImageInput, read_image
from client._models import Outcome, Prediction
from client._retry import Deadline, RetryPolicy, parse_retry_after

T = TypeVar("T", bound=ImageInput)

PREDICT_PATH = "/v1/predict"
DEFAULT_TIMEOUT = 30.0
USER_AGENT = "pneumonia-xray-client/0.1"


def client_options(base_url: str, api_key: str | None, timeout: float | httpx.Timeout | None) -> dict[str, Any]:
    """Keyword arguments of the underlying `httpx.Client`/`AsyncClient`."""
    headers = {"user-agent": USER_AGENT, "accept": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return {"base_url": base_url, "headers": headers, "timeout": timeout}


def request_options(data: bytes, content_type: str, operating_point: str | None) -> dict[str, Any]:
    params = {"operating_point": operating_point} if operating_point else None
    return {"content": data, "headers": {"content-type": content_type}, "params": params}


def parse_prediction(response: httpx.Response) -> Prediction:
    if response.is_success:
        return Prediction.model_validate_json(response.content)
    raise error_from_response(response, parse_retry_after(response))


def as_client_error(exc: httpx.TransportError) -> TransportError:
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Timeout(message) if isinstance(exc, httpx.TimeoutException) else TransportError(message)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Client:
    """Scores chest radiographs with the gateway at `base_url`. Keeps its connections open between calls: make one
    and reuse it, ideally as a context manager (`with Client(url) as client: ...`). Thread-safe.

    `timeout` bounds each HTTP attempt (None: no limit); `retry` says what is retried and bounds a call's total time.
    `transport` swaps the network for another `httpx` transport (tests, proxies)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(transport=transport, **client_options(base_url, api_key, timeout))

    def predict(
        self, image: ImageInput, *, operating_point: str | None = None, content_type: str | None = None
    ) -> Prediction:
        """Score one image: a path, its bytes, or a binary file. Raises a `ClientError` on failure."""
        data, kind = read_image(image, content_type)
        return self._predict_bytes(data, kind, operating_point)

    def predict_many(
        self, items: Iterable[T], *, concurrency: int = 8, operating_point: str | None = None
    ) -> Iterator[Outcome[T]]:
        """Score many images, `concurrency` at a time, yielding an `Outcome` per item as each completes (not in
        input order). Failures are yielded, not raised. Items are read lazily: any iterable, of any length."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        pending: set[Future[Outcome[T]]] = set()
        with ThreadPoolExecutor(concurrency, thread_name_prefix="xray-client") as pool:
            try:
                for item in items:
                    pending.add(pool.submit(self._outcome, item, operating_point))
                    if len(pending) >= 2 * concurrency:  # a few queued so no worker waits on the caller
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        yield from (future.result() for future in done)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (future.result() for future in done)
            finally:  # the caller stopped early: drop what has not started
                for future in pending:
                    future.cancel()

    def _outcome(self, item: T, operating_point: str | None) -> Outcome[T]:
        try:
            data, kind = read_image(item)
        except OSError as exc:
            return Outcome(item, error=exc)
        digest = sha256(data)
        try:
            return Outcome(item, self._predict_bytes(data, kind, operating_point), sha256=digest)
        except ClientError as exc:
            return Outcome(item, error=exc, sha256=digest)

    def _predict_bytes(self, data: bytes, content_type: str, operating_point: str | None) -> Prediction:
        deadline, failures = Deadline(self.retry), 0
        while True:
            try:
                return self._attempt(data, content_type, operating_point)
            except ClientError as exc:
                failures += 1
                delay = deadline.next_delay(failures, exc)
                if delay is None:
                    raise
                time.sleep(delay)

    def _attempt(self, data: bytes, content_type: str, operating_point: str | None) -> Prediction:
        try:
            response = self._http.post(PREDICT_PATH, **request_options(data, content_type, operating_point))
        except httpx.TransportError as exc:
            raise as_client_error(exc) from exc
        return parse_prediction(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
