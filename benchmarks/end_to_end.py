"""End to end over loopback: the gateway (embedded backend, one uvicorn process) vs the naive server
(`benchmarks/naive_server.py`) on the same SavedModel, full-resolution JPEGs, at concurrency 1, 8, 32.
Each server runs alone (one after the other) for `--seconds` per level.

    .venv/bin/python -m benchmarks.end_to_end [--seconds 12]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import numpy as np
import typer

from benchmarks._samples import REPO, fullres
from devtools.live_servers import free_port, stop, wait_until_ok

LEVELS = (1, 8, 32)


@contextmanager
def server(command: list[str], env: dict[str, str], ready_path: str, port: int) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_ok(url + ready_path, process, timeout_s=180)
        yield url
    finally:
        stop(process, timeout_s=60)


async def level(url: str, path: str, images: list[bytes], concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    sent = 0

    async def worker(client: httpx.AsyncClient, stop_at: float) -> None:
        nonlocal failures, sent
        while time.monotonic() < stop_at:
            image = images[sent % len(images)]
            sent += 1
            started = time.perf_counter()
            response = await client.post(path, content=image, headers={"content-type": "image/jpeg"})
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        for image in images[:2]:
            await client.post(path, content=image, headers={"content-type": "image/jpeg"})
        started = time.monotonic()
        await asyncio.gather(*(worker(client, started + seconds) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return {
        "images_per_s": len(latencies) / elapsed,
        "p50_ms": float(np.median(latencies)) * 1e3,
        "p99_ms": float(np.percentile(latencies, 99)) * 1e3,
        "failures": failures,
    }


def main(seconds: Annotated[float, typer.Option(help="Measured seconds per concurrency level.")] = 12) -> None:
    images = fullres()
    results: dict[str, dict[int, dict[str, float]]] = {}
    port = free_port()
    gateway_env = {
        "GATEWAY_PORT": str(port), "GATEWAY_MAX_IN_FLIGHT": "64", "GATEWAY_UPSTREAM_TIMEOUT_S": "120",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    with server([sys.executable, "-m", "serving"], gateway_env, "/readyz", port) as url:
        results["gateway"] = {c: asyncio.run(level(url, "/v1/predict", images, c, seconds)) for c in LEVELS}
    port = free_port()
    with server([sys.executable, "-m", "benchmarks.naive_server", "--port", str(port)], {}, "/", port) as url:
        results["naive"] = {c: asyncio.run(level(url, "/predict", images, c, seconds)) for c in LEVELS}

    print(f"\n{len(images)} full-resolution JPEGs, {seconds:g} s per level, loopback, {os.cpu_count()} CPUs")
    print(f"{'server':8s} {'conc':>4s} {'images/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'fail':>5s}")
    for name, by_level in results.items():
        for c, r in by_level.items():
            row = f"{r['images_per_s']:9.2f} {r['p50_ms']:8.0f} {r['p99_ms']:8.0f} {r['failures']:5.0f}"
            print(f"{name:8s} {c:4d} {row}")
    print("\nratios gateway / naive (throughput ↑, latency ↓ better)")
    for c in LEVELS:
        g, n = results["gateway"][c], results["naive"][c]
        print(
            f"  concurrency {c:2d}: images/s {g['images_per_s'] / n['images_per_s']:.2f}×, "
            f"p50 {g['p50_ms'] / n['p50_ms']:.2f}×, p99 {g['p99_ms'] / n['p99_ms']:.2f}×"
        )


if __name__ == "__main__":
    typer.run(main)
