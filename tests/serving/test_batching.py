"""The micro-batcher merges concurrent requests into model calls within its size and wait, splits a request larger
than a call, keeps each request's deadline, sheds past its queue limit, and counts what it does. The model here is
a fake that records its calls: each image's output is its own first pixel, so every answer shows whose it is."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from serving import errors
from serving.inference.batching import MicroBatcher
from serving.observability.metrics import GatewayMetrics


class RecordingModel:
    """Records the images of each call; `hold` (a threading.Event) keeps a call running until it is set; `slow`
    holds the first call for that many seconds."""

    def __init__(self, hold: threading.Event | None = None, fail: bool = False, slow: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.hold, self.fail, self.slow = hold, fail, slow
        self.started = threading.Event()

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.calls.append([int(v) for v in images[:, 0, 0, 0]])
        first = len(self.calls) == 1
        self.started.set()
        if self.hold is not None:
            self.hold.wait(10)
        if first and self.slow:
            threading.Event().wait(self.slow)
        if self.fail:
            raise RuntimeError("the model broke")
        return {"probability": images[:, 0, 0, 0].astype(np.float32), "rows": images[:, 0, :2, 0].astype(np.float32)}


def images(*values: int) -> np.ndarray:
    return np.stack([np.full((4, 4, 1), v, np.uint8) for v in values])


def batcher(
    model: RecordingModel, *, size: int = 8, wait_s: float = 0.05, queue: int = 64, concurrency: int = 1
) -> MicroBatcher:
    metrics = GatewayMetrics(CollectorRegistry())
    return MicroBatcher(model, size, wait_s, queue, retry_after_s=3, metrics=metrics, concurrency=concurrency)


def sample(metrics: GatewayMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value

async def held_call(queue: int = 64) -> tuple[RecordingModel, MicroBatcher, threading.Event, asyncio.Task]:
    """A one-image-per-call batcher whose first call (image 1) is running and held until the event is set."""
    hold = threading.Event()
    model = RecordingModel(hold)
    merger = batcher(model, size=1, wait_s=0, queue=queue)
    merger.start()
    running = asyncio.create_task(merger.submit(images(1), timeout_s=30))
    await asyncio.to_thread(model.started.wait, 10)
    return model, merger, hold, running



async def test_concurrent_requests_share_one_model_call() -> None:
    model = RecordingModel()
    merger = batcher(model, wait_s=0.5)
    merger.start()
    answers = await asyncio.gather(*(merger.submit(images(v), timeout_s=30) for v in (1, 2, 3, 4, 5)))
    await merger.close()
    assert model.calls == [[1, 2, 3, 4, 5]]
    assert [a["probability"].tolist() for a in answers] == [[1.0], [2.0], [3.0], [4.0], [5.0]]
    assert answers[2]["rows"].tolist() == [[3.0, 3.0]]
    assert sample(merger.metrics, "gateway_batch_size_images_sum") == 5
    assert sample(merger.metrics, "gateway_batch_size_images_count") == 1


async def test_a_full_batch_runs_without_waiting_and_a_large_request_is_split() -> None:
    model = RecordingModel()
    merger = batcher(model, size=4, wait_s=60)  # only full batches run before a minute has passed
    merger.start()
    answer = await asyncio.wait_for(merger.submit(images(*range(1, 9)), timeout_s=30), 20)
    assert model.calls == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert answer["probability"].tolist() == [float(v) for v in range(1, 9)]
    await merger.close()


async def test_calls_run_side_by_side_up_to_the_concurrency_and_answers_keep_their_order() -> None:
    model = RecordingModel(slow=1.0)
    merger = batcher(model, size=2, wait_s=0, concurrency=2)
    merger.start()
    answer = await merger.submit(images(1, 2, 3, 4, 5), timeout_s=30)
    # [1, 2] was held a second; [3, 4] and then [5] ran beside it and finished first
    assert model.calls == [[1, 2], [3, 4], [5]]
    assert answer["probability"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    await merger.close()


async def test_no_more_calls_run_at_once_than_the_concurrency() -> None:
    hold = threading.Event()
    model = RecordingModel(hold)
    merger = batcher(model, size=1, wait_s=0, concurrency=2)
    merger.start()
    answers = [asyncio.create_task(merger.submit(images(v), timeout_s=30)) for v in (1, 2, 3)]
    await asyncio.sleep(0.3)
    assert model.calls == [[1], [2]] and sample(merger.metrics, "gateway_batch_queue_images") == 1
    hold.set()
    assert [(await a)["probability"].tolist() for a in answers] == [[1.0], [2.0], [3.0]]
    await merger.close()


async def test_a_lone_image_runs_after_the_batch_timeout() -> None:
    model = RecordingModel()
    merger = batcher(model, size=8, wait_s=0.05)
    merger.start()
    assert (await asyncio.wait_for(merger.submit(images(7), timeout_s=30), 20))["probability"].tolist() == [7.0]
    await merger.close()


async def test_past_its_deadline_a_request_gets_504_and_its_waiting_images_never_run() -> None:
    model, merger, hold, running = await held_call()
    with pytest.raises(errors.UpstreamTimeout):
        await merger.submit(images(2, 3), timeout_s=0.2)  # queued behind the held call
    assert sample(merger.metrics, "gateway_batch_queue_images") == 0
    hold.set()
    assert (await running)["probability"].tolist() == [1.0]
    after = await merger.submit(images(4), timeout_s=30)
    assert after["probability"].tolist() == [4.0]
    assert model.calls == [[1], [4]]  # 2 and 3 were dropped, not computed
    assert sample(merger.metrics, "gateway_batch_refused_requests_total", {"reason": "deadline"}) == 1
    await merger.close()


async def test_past_the_queue_limit_a_request_is_shed_with_retry_after() -> None:
    _, merger, hold, running = await held_call(queue=3)
    queued = asyncio.create_task(merger.submit(images(2, 3, 4), timeout_s=30))
    await asyncio.sleep(0.05)
    assert sample(merger.metrics, "gateway_batch_queue_images") == 3
    with pytest.raises(errors.UpstreamOverloaded) as shed:
        await merger.submit(images(5), timeout_s=30)
    assert shed.value.status_code == 503 and shed.value.headers == {"Retry-After": "3"}
    assert sample(merger.metrics, "gateway_batch_refused_requests_total", {"reason": "queue_full"}) == 1
    hold.set()
    assert (await running)["probability"].tolist() == [1.0]
    assert (await queued)["probability"].tolist() == [2.0, 3.0, 4.0]
    await merger.close()


async def test_a_failing_model_call_fails_its_requests_and_the_next_call_runs() -> None:
    model = RecordingModel(fail=True)
    merger = batcher(model, wait_s=0.2)
    merger.start()
    results = await asyncio.gather(
        merger.submit(images(1), timeout_s=30), merger.submit(images(2), timeout_s=30), return_exceptions=True
    )
    assert [type(r) for r in results] == [errors.UpstreamError, errors.UpstreamError]
    model.fail = False
    assert (await merger.submit(images(3), timeout_s=30))["probability"].tolist() == [3.0]
    assert model.calls == [[1, 2], [3]]
    await merger.close()


async def test_closing_answers_the_waiting_requests() -> None:
    _, merger, hold, running = await held_call()
    waiting = asyncio.create_task(merger.submit(images(2), timeout_s=30))
    await asyncio.sleep(0.05)
    await merger.close()
    hold.set()
    with pytest.raises(errors.NotReady):
        await waiting
    running.cancel()


async def test_a_caller_on_another_event_loop_is_answered() -> None:
    """As an in-process client on the test's loop calls a gateway whose lifespan runs on the TestClient's."""
    model = RecordingModel()
    merger = batcher(model, wait_s=0)
    merger.start()
    answer = await asyncio.to_thread(lambda: asyncio.run(merger.submit(images(9), timeout_s=5)))
    assert answer["probability"].tolist() == [9.0]
    await merger.close()
