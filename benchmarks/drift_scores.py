"""PSI of clean and degraded windows of validation pictures against the shipped model's drift
reference (numbers printed, never asserted; the tests assert the thresholds):

    .venv/bin/python -m benchmarks.drift_scores --window 500 --scored 200

Input features are computed on `--window` pictures; P(pneumonia) needs the model, so the probability
row scores the first `--scored` pictures of each window (0: skip; about 0.2 s per picture on CPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from benchmarks._samples import DATA_DIR, REPO
from devtools.drift_degradations import DEGRADATIONS
from radiograph import acquisition
from radiograph.drift import PROBABILITY, DriftReference, reference_path
from radiograph.savedmodel import LoadedModel
from training.data import load_pixels
from training.evaluate import examples_for, score


def main(
    model: Annotated[Path, typer.Option(help="Model root")] = REPO / "models" / "pneumonia",
    window: Annotated[int, typer.Option(help="Pictures per window (the gateway's default is 500)")] = 500,
    scored: Annotated[int, typer.Option(help="Pictures per window scored by the model for the probability row")] = 0,
    seed: int = 0,
) -> None:
    loaded = LoadedModel.from_dir(model)
    reference = DriftReference.load(reference_path(loaded.path))
    examples = examples_for(DATA_DIR, "val", loaded)
    chosen = np.random.default_rng(seed).permutation(len(examples))[:window]  # random order: any prefix is a sample
    clean = load_pixels([examples[i] for i in chosen], loaded.metadata.input_height)
    windows = {"clean": clean} | {name: change(clean) for name, change in DEGRADATIONS.items()}
    print(f"model version {loaded.version}, reference of {reference.n} validation pictures; "
          f"window of {len(clean)} validation pictures (P on the first {min(scored, len(clean))})")
    names = [*acquisition.FEATURES, PROBABILITY]
    print(f"{'feature':16s}" + "".join(f"{name:>14s}" for name in windows))
    table = {}
    for name, pixels in windows.items():
        traits = acquisition.traits_of(pixels)
        table[name] = {f: reference.features[f].psi(traits[:, i]) for i, f in enumerate(acquisition.FEATURES)}
        if scored:
            p = score(loaded, pixels[:scored])["probability"]
            table[name][PROBABILITY] = reference.features[PROBABILITY].psi(p)
    for feature in names:
        if feature in table["clean"]:
            print(f"{feature:16s}" + "".join(f"{table[w][feature]:14.3f}" for w in windows))


if __name__ == "__main__":
    typer.run(main)
