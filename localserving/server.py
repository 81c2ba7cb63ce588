"""Starting the stand-in: as an asyncio gRPC server, or on a background thread for tests and benchmarks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from localserving.repository import ModelRepository
from localserving.servicers import Faults, ModelServicer, PredictionServicer

T = TypeVar("T")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RunningServer:
    server: grpc.aio.Server
    port: int
    predictions: PredictionServicer


async def start_server(repository: ModelRepository, faults: Faults, host: str, port: int) -> RunningServer:
    """Serve `repository` on `host:port` (port 0: a free one); returns once the port is bound."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    predictions = PredictionServicer(repository, faults)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(predictions, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(repository), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return RunningServer(server, bound, predictions)


class BackgroundServer:
    """The stand-in on its own event loop in a daemon thread, so one process can hold it and a client.

    Models are loaded once; `stop()` and `start()` take the gRPC server down and up again on the same
    port (a Serving crash and restart, as its clients see it), `faults` changes its behaviour live.
    """

    def __init__(
        self, root: Path, name: str, *, labels: dict[str, int] | None = None, poll_s: float = 0.25,
        host: str = "127.0.0.1",
    ) -> None:
        self.host, self.port = host, 0
        self.faults = Faults()
        self.repository = ModelRepository(root, name, labels)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="localserving", daemon=True)
        self._thread.start()
        self._running: RunningServer | None = None
        self._run(self.repository.refresh())
        self._watch = asyncio.run_coroutine_threadsafe(self.repository.watch(poll_s), self._loop)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._running is not None

    @property
    def request_ids(self) -> list[str | None]:
        return list(self._running.predictions.request_ids) if self._running else []

    def start(self) -> str:
        self._running = self._run(start_server(self.repository, self.faults, self.host, self.port))
        self.port = self._running.port
        return self.address

    def stop(self) -> None:
        if self._running is not None:
            self._run(self._running.server.stop(grace=None))
            self._running = None

    def close(self) -> None:
        self.stop()
        self._watch.cancel()
        self._run(self._loop.shutdown_default_executor())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)
