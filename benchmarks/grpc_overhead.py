"""What the TF Serving path costs over the embedded backend, for one image.

Same process, same model, same image, on loopback: the embedded backend runs the SavedModel in-process;
the gRPC path goes gateway → gRPC → `localserving` (our TF Serving stand-in) → the same SavedModel.
Measured at two levels, calls interleaved so that load from other processes hits both alike:
  backend  `backend.predict` on the preprocessed tensor (serialisation + gRPC + the stand-in),
  REST     `POST /v1/predict` on a real uvicorn (the whole request: upload, decode, preprocess, inference).

    .venv/bin/python benchmarks/grpc_overhead.py --requests 50
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from benchmarks._samples import DATA_DIR
from devtools.live_servers import gateway_thread
from localserving import BackgroundServer
from radiograph import imaging
from serving.config import SHIPPED_MODEL_DIR, Settings
from serving.inference.embedded import EmbeddedBackend
from serving.inference.tfserving import ServingBackend
from serving.observability.metrics import GatewayMetrics


def interleaved_medians(first: Callable[[], object], second: Callable[[], object], n: int) -> tuple[float, float]:
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(3):  # warm-up
        first(), second()
    for _ in range(n):
        for run, sink in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            run()
            sink.append(time.perf_counter() - started)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def backend_level(address: str, image: bytes, n: int) -> tuple[float, float]:
    settings = Settings(serving_address=address)
    loop = asyncio.new_event_loop()
    # TensorFlow, as the local Serving stand-in runs it: the difference is the gRPC path alone
    embedded_settings = Settings(model_dir=SHIPPED_MODEL_DIR, upstream_timeout_s=30, inference_runtime="tensorflow")
    embedded = EmbeddedBackend(embedded_settings, GatewayMetrics(CollectorRegistry()))
    remote = ServingBackend(settings, GatewayMetrics(CollectorRegistry()))
    loop.run_until_complete(embedded.start())
    loop.run_until_complete(remote.start())
    size = loop.run_until_complete(embedded.metadata()).input_height  # as the gateway sizes (serving.scoring)
    pixels = imaging.load_radiograph(image, size).pixels[None, ..., None]
    try:
        return interleaved_medians(
            lambda: loop.run_until_complete(embedded.predict(pixels, "bench")),
            lambda: loop.run_until_complete(remote.predict(pixels, "bench")),
            n,
        )
    finally:
        loop.run_until_complete(embedded.close())
        loop.run_until_complete(remote.close())
        loop.close()


def rest_level(address: str, image: bytes, n: int) -> tuple[float, float]:
    def post(client: httpx.Client) -> Callable[[], object]:
        return lambda: client.post("/v1/predict", content=image, headers={"content-type": "image/jpeg"}).json()

    with gateway_thread(Settings()) as local, gateway_thread(Settings(serving_address=address)) as remote:
        return interleaved_medians(post(local), post(remote), n)


def main(
    requests: Annotated[int, typer.Option(help="Timed calls per path and level.")] = 50,
    image: Annotated[Path | None, typer.Option(help="A JPEG; default: the first full-resolution sample.")] = None,
) -> None:
    path = image or sorted((DATA_DIR / "fullres_samples").glob("*/*.jpeg"))[0]
    data = path.read_bytes()
    serving = BackgroundServer(SHIPPED_MODEL_DIR, "pneumonia")
    address = serving.start()
    try:
        results = {"backend": backend_level(address, data, requests), "REST": rest_level(address, data, requests)}
    finally:
        serving.close()
    print(f"one image ({len(data) / 1024:.0f} KiB JPEG), {requests} interleaved calls per path, median latency")
    print(f"{'level':<8} {'embedded ms':>12} {'gRPC ms':>9} {'overhead ms':>12} {'ratio':>6}")
    for level, (embedded_ms, grpc_ms) in results.items():
        overhead, ratio = grpc_ms - embedded_ms, grpc_ms / embedded_ms
        print(f"{level:<8} {embedded_ms:12.1f} {grpc_ms:9.1f} {overhead:12.1f} {ratio:6.2f}")


if __name__ == "__main__":
    typer.run(main)
