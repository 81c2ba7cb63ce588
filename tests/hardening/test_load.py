"""Load on a real gateway process over loopback: N closed-loop clients at 2× the admission limit.

Promises checked: no 5xx except the documented shedding answer (503 `overloaded` + Retry-After);
accepted requests keep a bounded p99 (the queue is bounded); RSS does not grow without bound.
Bounded in count and time. The CI profile runs by default (< ~60 s); the soak profile (10,000
requests) runs with `.venv/bin/python -m pytest tests/hardening/test_load.py -m slow`.
With `GATEWAY_SERVING_ADDRESS=host:port` in the environment the gateway scores through TF Serving.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from devtools.live_servers import GENEROUS_UPSTREAM_TIMEOUT_S, GatewayProcess, gateway_process

MAX_IN_FLIGHT = 4
CLIENTS = 2 * MAX_IN_FLIGHT
SHED_BACKOFF_S = 0.1  # impatient clients: a tenth of the advertised Retry-After


@dataclass(frozen=True)
class Profile:
    requests: int
    seconds: float
    warmup: int
    p99_bound_s: float
    rss_growth_bound_mib: float


CI = Profile(requests=400, seconds=35, warmup=40, p99_bound_s=5.0, rss_growth_bound_mib=64)
SOAK = Profile(requests=10_000, seconds=1_500, warmup=200, p99_bound_s=5.0, rss_growth_bound_mib=128)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    sent: int = 0


async def client_loop(
    client: httpx.AsyncClient, images: list[bytes], tally: Tally, profile: Profile, stop_at: float
) -> None:
    while tally.sent < profile.requests and time.monotonic() < stop_at:
        image = images[tally.sent % len(images)]
        tally.sent += 1
        started = time.perf_counter()
        response = await client.post("/v1/predict", content=image, headers={"content-type": "image/jpeg"})
        elapsed = time.perf_counter() - started
        tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
        if response.status_code == 200:
            tally.latencies.append(elapsed)
        elif response.status_code == 503 and response.json()["error"]["code"] == "overloaded":
            if "retry-after" not in response.headers:
                tally.bad.append("503 overloaded without Retry-After")
            await asyncio.sleep(SHED_BACKOFF_S)
        else:
            tally.bad.append(f"{response.status_code}: {response.text[:200]}")


async def drive(gateway: GatewayProcess, images: list[bytes], profile: Profile, requests: int) -> Tally:
    tally = Tally()
    phase = Profile(requests, profile.seconds, 0, profile.p99_bound_s, profile.rss_growth_bound_mib)
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60, limits=limits) as client:
        stop_at = time.monotonic() + profile.seconds
        await asyncio.gather(*(client_loop(client, images, tally, phase, stop_at) for _ in range(CLIENTS)))
    return tally


def run_load(tmp_path: Path, images: list[bytes], profile: Profile) -> None:
    # this checks shedding, not the deadline
    env = {
        "GATEWAY_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_UPSTREAM_TIMEOUT_S": str(GENEROUS_UPSTREAM_TIMEOUT_S),
    }
    with gateway_process(os.environ | env, tmp_path / "gateway.log", ready_s=120) as gateway:
        asyncio.run(drive(gateway, images, profile, profile.warmup))
        rss_before = gateway.rss_kib()
        tally = asyncio.run(drive(gateway, images, profile, profile.requests))
        rss_after = gateway.rss_kib()
        assert gateway.process.poll() is None
        assert httpx.get(f"{gateway.url}/healthz").status_code == 200
    p99 = float(np.percentile(tally.latencies, 99))
    growth_mib = (rss_after - rss_before) / 1024
    print(
        f"\nload: {tally.sent} requests, statuses {tally.statuses}, accepted p50 "
        f"{np.median(tally.latencies):.3f} s p99 {p99:.3f} s, RSS {rss_before / 1024:.0f} → {rss_after / 1024:.0f} MiB"
    )
    assert tally.bad == []
    assert set(tally.statuses) <= {200, 503}
    assert tally.statuses.get(200, 0) >= 20, tally.statuses
    assert tally.statuses.get(503, 0) > 0, "2× the admission limit never shed a request: the limit is not enforced"
    assert p99 < profile.p99_bound_s
    assert growth_mib < profile.rss_growth_bound_mib


@pytest.fixture(scope="module")
def load_images(fullres_samples: list[tuple[Path, str]]) -> list[bytes]:
    return [path.read_bytes() for path, _ in fullres_samples]


@pytest.mark.timeout(300)
def test_load_ci(tmp_path: Path, load_images: list[bytes]) -> None:
    run_load(tmp_path, load_images, CI)


@pytest.mark.slow
@pytest.mark.timeout(2_400)
def test_load_soak(tmp_path: Path, load_images: list[bytes]) -> None:
    run_load(tmp_path, load_images, SOAK)
