"""End to end over loopback: the gateway with its default settings (what `scripts/serve` runs: the embedded backend,
its default runtime, precision and micro-batching) vs the naive server (`benchmarks/naive_server.py`: the same
SavedModel on TensorFlow, one image per call) on full-resolution JPEGs, at 1, 8 and 32 concurrent clients.

Both servers run at once and are measured side by side: at each level the gateway, then the naive server, for
`--seconds` each, `--rounds` times, so that load from elsewhere on the machine falls on both alike. Clients honour
`Retry-After` on 503 (the gateway sheds past `GATEWAY_MAX_IN_FLIGHT`); only answered images count.

    .venv/bin/python -m benchmarks.end_to_end [--seconds 12] [--rounds 2]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Annotated, Any

import httpx
import numpy as np
import typer

from benchmarks._samples import REPO, fullres
from benchmarks.model_cost import cpu_name
from devtools.live_servers import free_port, stop, wait_until_ok

LEVELS = (1, 8, 32)
SERVERS = {"gateway": "/v1/predict", "naive": "/predict"}


@contextmanager
def server(command: list[str], env: dict[str, str], ready_path: str, port: int) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_ok(url + ready_path, process, timeout_s=300)
        yield url
    finally:
        stop(process, timeout_s=60)


async def level(url: str, path: str, images: list[bytes], concurrency: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    failures = shed = sent = 0
    codes: dict[int, int] = {}

    async def worker(client: httpx.AsyncClient, stop_at: float) -> None:
        nonlocal failures, shed, sent
        while time.monotonic() < stop_at:
            image = images[sent % len(images)]
            sent += 1
            started = time.perf_counter()
            try:
                response = await client.post(path, content=image, headers={"content-type": "image/jpeg"})
            except httpx.TransportError:  # e.g. a connection the server reset
                failures += 1
                continue
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            elif response.status_code == 503 and "retry-after" in response.headers:
                shed += 1
                await asyncio.sleep(float(response.headers["retry-after"]))
            else:
                failures += 1
                codes[response.status_code] = codes.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client, started + seconds) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return {
        "images": len(latencies), "seconds": elapsed, "shed": shed, "failures": failures, "codes": codes,
        "latencies": latencies,
    }


def probabilities(url: str, path: str, images: list[bytes]) -> np.ndarray:
    with httpx.Client(base_url=url, timeout=120) as client:
        return np.array([
            client.post(path, content=image, headers={"content-type": "image/jpeg"}).json()["probability"]
            for image in images
        ])


def main(
    seconds: Annotated[float, typer.Option(help="Measured seconds per server, level and round.")] = 12,
    rounds: Annotated[int, typer.Option(help="Rounds over the levels (servers alternate within each).")] = 2,
) -> None:
    images = fullres()
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    gateway_port, naive_port = free_port(), free_port()
    with ExitStack() as stack:
        urls = {
            "gateway": stack.enter_context(server(
                [sys.executable, "-m", "serving"], {**clean_env, "GATEWAY_PORT": str(gateway_port)}, "/readyz",
                gateway_port,
            )),
            "naive": stack.enter_context(server(
                [sys.executable, "-m", "benchmarks.naive_server", "--port", str(naive_port)], clean_env, "/",
                naive_port,
            )),
        }
        scores = {name: probabilities(url, SERVERS[name], images) for name, url in urls.items()}  # also warms up
        totals: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(rounds):
            for concurrency in LEVELS:
                for name, url in urls.items():
                    result = asyncio.run(level(url, SERVERS[name], images, concurrency, seconds))
                    totals.setdefault((name, concurrency), []).append(result)
        runtime = httpx.get(urls["gateway"] + "/metrics").text
    report(images, seconds, rounds, totals, scores, runtime)


def report(images: list[bytes], seconds: float, rounds: int, totals: dict, scores: dict, metrics_text: str) -> None:
    served = [line for line in metrics_text.splitlines()
              if line.startswith("gateway_inference_runtime_info{") and line.endswith(" 1.0")]
    print(f"\n{len(images)} full-resolution JPEGs, {rounds} × {seconds:g} s per server and level, loopback; "
          f"{os.cpu_count()} CPUs: {cpu_name()}")
    calls = {line.split()[0]: float(line.split()[1]) for line in metrics_text.splitlines()
             if line.startswith(("gateway_batch_size_images_sum", "gateway_batch_size_images_count"))}
    mean_batch = calls.get("gateway_batch_size_images_sum", 0) / max(calls.get("gateway_batch_size_images_count", 0), 1)
    print(f"gateway (default settings) scores with: {served[0].split('{')[1].split('}')[0] if served else '?'}; "
          f"{mean_batch:.1f} images per model call on average over the whole run")
    print(f"{'server':8s} {'conc':>4s} {'images/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'shed':>5s} {'fail':>5s}")
    rates = {}
    for (name, concurrency), results in totals.items():
        latencies = [x for r in results for x in r["latencies"]]
        rate = sum(r["images"] for r in results) / sum(r["seconds"] for r in results)
        rates[name, concurrency] = rate
        p50, p99 = (np.percentile(latencies, q) * 1e3 if latencies else float("nan") for q in (50, 99))
        shed, failures = sum(r["shed"] for r in results), sum(r["failures"] for r in results)
        codes: dict[int, int] = {}
        for r in results:
            for code, count in r["codes"].items():
                codes[code] = codes.get(code, 0) + count
        answered = ", ".join(f"{count}× {code}" for code, count in sorted(codes.items()))
        print(f"{name:8s} {concurrency:4d} {rate:9.2f} {p50:8.0f} {p99:8.0f} {shed:5d} {failures:5d}  {answered}")
    print("\nthroughput gateway / naive:")
    for concurrency in LEVELS:
        print(f"  {concurrency:2d} clients: {rates['gateway', concurrency] / rates['naive', concurrency]:.2f}×")
    difference = np.abs(scores["gateway"] - scores["naive"])
    print(f"P, gateway vs naive (TensorFlow float32) on the {len(images)} images: max |ΔP| {difference.max():.4f}")


if __name__ == "__main__":
    typer.run(main)
