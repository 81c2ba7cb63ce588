"""Inference cost of the shipped model per runtime × precision × batch size, in one process, calls interleaved (so
that load from elsewhere hits every configuration alike); ratios against TensorFlow float32 one image at a time,
what a naive loop runs. Or, with `--baseline`, the cost of the model against another exported version, in each
runtime and precision.

    .venv/bin/python -m benchmarks.model_cost [--batches 1 8 32] [--images 64]
    .venv/bin/python -m benchmarks.model_cost --model NEW_ROOT --baseline models/pneumonia --batch 8 --calls 20

(an older version comes from git history: `git archive REV models/pneumonia/N | tar -x -C /tmp/vN`). Every
configuration is measured, validated or not: which ones the gateway may serve is `radiograph.precision`'s call.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from radiograph import openvino_model
from radiograph.runtime import DEFAULT_CACHE_DIR, ScoringModel
from radiograph.savedmodel import LoadedModel

REPO = Path(__file__).resolve().parent.parent
Predict = Callable[[np.ndarray], np.ndarray]


def cpu_name() -> str:
    """The CPU's model name and whether it has AMX / AVX512-BF16, for the figures' caption."""
    flags, name = set(), platform.processor()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            name = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    has = {flag: "yes" if flag in flags else "no" for flag in ("amx_bf16", "avx512_bf16")}
    return f"{name}, AMX {has['amx_bf16']}, AVX512-BF16 {has['avx512_bf16']}"


def interleaved(configurations: dict[str, Predict], images: np.ndarray, calls: int) -> dict[str, float]:
    """Median ms per call of each configuration on `images`, after one warm-up call each."""
    for predict in configurations.values():
        predict(images)
    times: dict[str, list[float]] = {name: [] for name in configurations}
    for _ in range(calls):
        for name, predict in configurations.items():
            started = time.perf_counter()
            predict(images)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def side_by_side(model: ScoringModel) -> Predict:
    """`model.parallel_calls` calls at once on the batch (OpenVINO: one per stream, as the gateway runs them)."""
    if model.parallel_calls == 1:
        return model.predict
    pool = ThreadPoolExecutor(model.parallel_calls)
    return lambda images: np.concatenate(list(pool.map(model.predict, [images] * model.parallel_calls)))


def runtimes(model: LoadedModel, cache_dir: Path) -> dict[str, tuple[Predict, int]]:
    """name → (scores one batch as the gateway's concurrent calls would, calls it makes at once)."""
    configurations: dict[str, tuple[Predict, int]] = {"tensorflow float32": (model.predict, 1)}
    if openvino_model.available():
        precisions = ["float32", "bfloat16"] if openvino_model.native_bfloat16() else ["float32"]
        for precision in precisions:
            compiled = openvino_model.OpenVinoModel(model, precision, cache_dir)
            configurations[f"openvino {precision}"] = (side_by_side(compiled), compiled.parallel_calls)
    return configurations


def main(
    model: Annotated[Path, typer.Option(help="Model root (newest version) or version folder")] = REPO
    / "models" / "pneumonia",
    batches: Annotated[list[int] | None, typer.Option(help="Images per call (default 1 8 32)")] = None,
    images: Annotated[int, typer.Option(help="Images scored per configuration and batch size")] = 64,
    baseline: Annotated[Path | None, typer.Option(help="Compare against this model root instead")] = None,
    batch: Annotated[int, typer.Option(help="With --baseline: images per call")] = 1,
    calls: Annotated[int, typer.Option(help="With --baseline: timed calls per model")] = 30,
    openvino_cache: Annotated[Path, typer.Option(help="Converted OpenVINO models")] = DEFAULT_CACHE_DIR,
) -> None:
    candidate = LoadedModel.from_dir(model)
    height, width = candidate.metadata.input_height, candidate.metadata.input_width
    rng = np.random.default_rng(0)
    if baseline is not None:
        versions(LoadedModel.from_dir(baseline), candidate, rng, batch, calls, openvino_cache)
        return
    configurations = runtimes(candidate, openvino_cache)
    print(f"model version {candidate.version}; {cpu_name()}")
    print("ms per image at full use of the CPU (OpenVINO: one call per stream at once, each of `batch` images);")
    print(f"ratio: TensorFlow float32 one image at a time / this ({images} images per configuration and batch)")
    reference = None
    for size in batches or [1, 8, 32]:
        pictures = np.asarray(rng.integers(0, 256, (size, height, width, 1)), np.uint8)
        runs = {name: predict for name, (predict, _) in configurations.items()}
        medians = interleaved(runs, pictures, max(2, images // size))
        for name, ms in medians.items():
            per_image = ms / (size * configurations[name][1])
            reference = reference or per_image  # TensorFlow float32 at the first batch size
            print(f"  batch {size:3d}  {name:20s} {per_image:8.1f} ms   {reference / per_image:5.2f}×")


def versions(
    base: LoadedModel, candidate: LoadedModel, rng: np.random.Generator, batch: int, calls: int, cache_dir: Path
) -> None:
    """The two versions in every runtime × precision (each precision compiled for both, validated or not), calls
    of the two interleaved within each configuration."""
    if (base.metadata.input_height, base.metadata.input_width) != (
        candidate.metadata.input_height, candidate.metadata.input_width
    ):
        raise typer.BadParameter("the two models take different input sizes")
    size = (batch, candidate.metadata.input_height, candidate.metadata.input_width, 1)
    pictures = np.asarray(rng.integers(0, 256, size), np.uint8)
    pairs = zip(runtimes(base, cache_dir).items(), runtimes(candidate, cache_dir).values(), strict=True)
    print(f"ms per image, {calls} interleaved calls of {batch} image(s) per model and configuration "
          f"(OpenVINO: one call per stream at once); {cpu_name()}")
    print(f"  {'':20s} {'version ' + str(base.version):>12s} {'version ' + str(candidate.version):>12s}   ratio")
    for (name, (base_predict, parallel)), (candidate_predict, _) in pairs:
        medians = interleaved({"base": base_predict, "candidate": candidate_predict}, pictures, calls)
        base_ms, candidate_ms = (medians[k] / (batch * parallel) for k in ("base", "candidate"))
        print(f"  {name:20s} {base_ms:9.1f} ms {candidate_ms:9.1f} ms   {candidate_ms / base_ms:5.2f}×")


if __name__ == "__main__":
    typer.run(main)
