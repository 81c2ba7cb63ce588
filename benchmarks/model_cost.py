"""Inference cost of the shipped model against another exported version, in one process, calls interleaved
(so that load from elsewhere hits both alike): the price of a model change, e.g. of adding ensemble members.

    .venv/bin/python -m benchmarks.model_cost --baseline /tmp/v3/models/pneumonia --batch 1 --calls 30

(an older version comes from git history: `git archive REV models/pneumonia/N | tar -x -C /tmp/vN`).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from radiograph.savedmodel import LoadedModel

REPO = Path(__file__).resolve().parent.parent


def main(
    baseline: Annotated[Path, typer.Option(help="Model root (or version folder's parent) to compare against")],
    model: Annotated[Path, typer.Option(help="Model root of the candidate")] = REPO / "models" / "pneumonia",
    batch: Annotated[int, typer.Option(help="Images per call")] = 1,
    calls: Annotated[int, typer.Option(help="Timed calls per model")] = 30,
) -> None:
    models = {name: LoadedModel.from_dir(root) for name, root in (("baseline", baseline), ("candidate", model))}
    sizes = {(m.metadata.input_height, m.metadata.input_width) for m in models.values()}
    if len(sizes) != 1:
        raise typer.BadParameter(f"the two models take different input sizes: {sizes}")
    ((height, width),) = sizes
    images = np.asarray(np.random.default_rng(0).integers(0, 256, (batch, height, width, 1)), np.uint8)
    for m in models.values():  # warm-up: tracing and first allocations
        m.predict(images)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(calls):
        for name, m in models.items():
            started = time.perf_counter()
            m.predict(images)
            times[name].append((time.perf_counter() - started) * 1000)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"median ms per call of {batch} image(s), {calls} interleaved calls each")
    for name, m in models.items():
        print(f"  {name:9s} version {m.version}: {medians[name]:8.1f} ms ({medians[name] / batch:.1f} ms per image)")
    print(f"  ratio candidate/baseline: {medians['candidate'] / medians['baseline']:.2f}×")


if __name__ == "__main__":
    typer.run(main)
