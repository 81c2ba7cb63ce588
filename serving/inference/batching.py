"""Micro-batching: the images of concurrent requests scored together in one model call, as TF Serving batches.

- `max_batch_size`: most images in one model call (TF Serving's `max_batch_size`). A request with more images
  is split over several calls (TF Serving's large-batch splitting) and answered when all are done.
- `batch_timeout_s`: longest a batch waits to fill, counted from the arrival of its oldest image (TF Serving's
  `batch_timeout_micros`); a full batch runs at once.
- `concurrency`: model calls running at once (TF Serving's `num_batch_threads`), as many as the runtime runs in
  parallel (`parallel_calls`: TensorFlow 1, OpenVINO one per stream); the next batch fills while they run.
- `max_enqueued_images`: images waiting for a call. A request that would pass it is refused at once with 503
  `upstream_overloaded` and `Retry-After`, as TF Serving refuses a task when its batch queue is full.
- Each request has its own deadline: past it the request gets 504 and its images still waiting are dropped, never
  run; images already in a running call are computed and their results dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.to_thread
import numpy as np

from serving import errors
from serving.observability.metrics import GatewayMetrics

log = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]


@dataclass(eq=False)
class _Request:
    images: np.ndarray
    arrived: float
    answer: asyncio.Future[Outputs]
    taken: int = 0
    """Images handed to a model call so far (from the front)."""
    scored: int = 0
    parts: dict[int, Outputs] = field(default_factory=dict)
    """Outputs of the slices scored so far, by their first image."""

    @property
    def waiting(self) -> int:
        return len(self.images) - self.taken


class MicroBatcher:
    def __init__(
        self,
        run: Callable[[np.ndarray], Outputs],
        max_batch_size: int,
        batch_timeout_s: float,
        max_enqueued_images: int,
        retry_after_s: int,
        metrics: GatewayMetrics,
        concurrency: int = 1,
    ) -> None:
        self.run, self.concurrency = run, concurrency
        self.max_batch_size, self.batch_timeout_s = max_batch_size, batch_timeout_s
        self.max_enqueued_images, self.retry_after_s = max_enqueued_images, retry_after_s
        self.metrics = metrics
        self._queue: deque[_Request] = deque()
        self._waiting_images = 0
        self._arrival = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_task = self._loop.create_task(self._batches())

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        for request in self._queue:
            if not request.answer.done():
                request.answer.set_exception(errors.NotReady("the gateway is shutting down"))
        self._queue.clear()
        self._set_waiting(0)

    async def submit(self, images: np.ndarray, timeout_s: float) -> Outputs:
        """Every output for uint8 [n, H, W, 1], as one model call on these images alone would give them."""
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:  # a caller on another loop (tests)
            handed_over = asyncio.run_coroutine_threadsafe(self.submit(images, timeout_s), self._loop)
            return await asyncio.wrap_future(handed_over)
        if self._queue and self._waiting_images + len(images) > self.max_enqueued_images:
            self.metrics.batch_refused.labels("queue_full").inc()
            raise errors.UpstreamOverloaded(
                f"{self._waiting_images} images are waiting for the model (limit {self.max_enqueued_images}); "
                "retry later", headers={"Retry-After": str(self.retry_after_s)},
            )
        loop = asyncio.get_running_loop()
        request = _Request(np.asarray(images), loop.time(), loop.create_future())
        self._queue.append(request)
        self._set_waiting(self._waiting_images + len(images))
        self._arrival.set()
        try:
            async with asyncio.timeout(timeout_s):
                return await request.answer
        except TimeoutError:
            self.metrics.batch_refused.labels("deadline").inc()
            raise errors.UpstreamTimeout(f"inference took longer than {timeout_s:g} s") from None
        finally:
            self._withdraw(request)

    def _withdraw(self, request: _Request) -> None:
        """An answered or abandoned request leaves the queue; its images not yet taken are never run."""
        if request in self._queue:
            self._queue.remove(request)
            self._set_waiting(self._waiting_images - request.waiting)

    def _set_waiting(self, images: int) -> None:
        self._waiting_images = images
        self.metrics.batch_queue_images.set(images)

    async def _batches(self) -> None:
        free = asyncio.Semaphore(self.concurrency)
        while True:
            await free.acquire()
            await self._filled()
            batch = self._take()
            if not batch:
                free.release()
                continue
            call = asyncio.get_running_loop().create_task(self._score(batch))
            self._calls.add(call)  # held until done (the loop keeps only weak references to tasks)
            call.add_done_callback(self._calls.discard)
            call.add_done_callback(lambda _: free.release())

    async def _filled(self) -> None:
        """Until a batch is full or its oldest image has waited `batch_timeout_s`."""
        loop = asyncio.get_running_loop()
        while True:
            self._arrival.clear()
            if self._waiting_images >= self.max_batch_size:
                return
            if self._queue:
                left = self._queue[0].arrived + self.batch_timeout_s - loop.time()
                if left <= 0:
                    return
                try:
                    async with asyncio.timeout(left):
                        await self._arrival.wait()
                except TimeoutError:
                    return
            else:
                await self._arrival.wait()

    def _take(self) -> list[tuple[_Request, int, int]]:
        """(request, first, end) slices of up to `max_batch_size` images, oldest first."""
        batch, room = [], self.max_batch_size
        while self._queue and room:
            request = self._queue[0]
            n = min(room, request.waiting)
            batch.append((request, request.taken, request.taken + n))
            request.taken += n
            room -= n
            self._set_waiting(self._waiting_images - n)
            if not request.waiting:
                self._queue.popleft()
        return batch

    async def _score(self, batch: list[tuple[_Request, int, int]]) -> None:
        images = np.concatenate([request.images[first:end] for request, first, end in batch])
        self.metrics.batch_size.observe(len(images))
        try:
            outputs = await anyio.to_thread.run_sync(self.run, images)
        except Exception as exc:  # the model failed: so does every request in the call
            log.error("model call on %d images failed: %s", len(images), type(exc).__name__)
            for request, _, _ in batch:
                if not request.answer.done():
                    request.answer.set_exception(errors.UpstreamError(f"inference failed ({type(exc).__name__})"))
            return
        offset = 0
        for request, first, end in batch:
            request.parts[first] = {name: value[offset : offset + end - first] for name, value in outputs.items()}
            request.scored += end - first
            offset += end - first
            if request.scored == len(request.images) and not request.answer.done():
                parts = [request.parts[start] for start in sorted(request.parts)]
                request.answer.set_result({name: np.concatenate([p[name] for p in parts]) for name in outputs})
