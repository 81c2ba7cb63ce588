"""Per-image cost of the drift features (`radiograph.acquisition.traits`) and of the gateway's window
update, on validation-sized pictures (numbers printed, never asserted):

    .venv/bin/python -m benchmarks.drift_cost
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Annotated

import numpy as np
import typer
from prometheus_client import CollectorRegistry

from benchmarks._samples import REPO
from radiograph import acquisition
from serving.observability.drift import DriftMonitor

SIZE = 224


def per_image_us(function: Callable[[np.ndarray], object], pictures: np.ndarray, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function(pictures)
        times.append((time.perf_counter() - started) / len(pictures) * 1e6)
    return statistics.median(times)


def main(
    pictures: Annotated[int, typer.Option(help="Pictures per round")] = 200,
    rounds: Annotated[int, typer.Option(help="Timed rounds (median reported)")] = 10,
) -> None:
    from training.data import index_split, load_pixels

    examples = index_split(REPO.parent / "shared" / "data" / "chest_xray", "train")[:pictures]
    stack = load_pixels(examples, SIZE)
    monitor = DriftMonitor(REPO / "models" / "pneumonia", window=500, registry=CollectorRegistry())
    probabilities = np.linspace(0, 1, len(stack))
    monitor.observe(4, list(stack[:1]), probabilities[:1])  # loads the reference

    def one_by_one(pictures: np.ndarray) -> None:
        for picture in pictures:
            acquisition.traits(picture)

    def batch_observed(pictures: np.ndarray) -> None:
        monitor.observe(4, list(pictures), probabilities[: len(pictures)])

    def single_observed(pictures: np.ndarray) -> None:
        for picture in pictures:
            monitor.observe(4, [picture], probabilities[:1])

    features = per_image_us(acquisition.traits_of, stack, rounds)
    one = per_image_us(one_by_one, stack, rounds)
    observed = per_image_us(batch_observed, stack, rounds)
    single = per_image_us(single_observed, stack, rounds)
    print(f"{len(stack)} pictures of {SIZE}x{SIZE}, median of {rounds} rounds, microseconds per image")
    rows = {
        f"features (radiograph.acquisition.traits_of), batch of {len(stack)}": features,
        "features, one call per image": one,
        "gateway observe (features, bins, window, PSI), batch": observed,
        "gateway observe, one image per call (as /v1/predict)": single,
    }
    for name, value in rows.items():
        print(f"  {name:58s} {value:8.1f}")

if __name__ == "__main__":
    typer.run(main)
