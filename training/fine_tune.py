"""Top-block fine-tuning on cached lower activations, with the head fitted on frozen features, and
its checkpoint (`state.npz`: the weights and history after the last finished epoch, and the best
epoch's weights), from which a stopped run resumes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import keras
import numpy as np

from training import metrics
from training.graph import pooled_features, pooling_layers
from training.heads import balanced_class_weights
from training.thresholds import hard_auc, probabilities

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FineTuneConfig:
    epochs: int
    learning_rate: float = 1e-4
    label_smoothing: float = 0.05
    batch_size: int = 32
    chunk: int = 2048
    pooling: str = "whole"
    """`graph.POOLINGS`: which cells of the top block's grid the head sees."""


class FineTuning(TypedDict):
    """What `fine_tune` did: its config, each epoch's validation AUCs (epoch 0: frozen) and the epoch kept."""

    config: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int


Best = tuple[float, int, list[np.ndarray], list[np.ndarray]]
"""(hard AUC, epoch, top block weights, head weights) of the best epoch so far."""


def fine_tune(
    top: keras.Model,
    head: keras.Model,
    train: tuple[list[np.ndarray], np.ndarray],
    val: tuple[dict[str, np.ndarray], np.ndarray],
    config: FineTuneConfig,
    seed: int,
    checkpoint: Path | None = None,
) -> FineTuning:
    """Train the top block and the head together, in place, on cached lower activations, starting
    from ImageNet weights and the head fitted on frozen features. After each epoch both are scored
    on the validation views; the best epoch by hard-validation AUC is kept, epoch 0 (no fine-tuning)
    included, so fine-tuning is only adopted where it helps on shifted validation.

    `train`: (float16 activations per view; labels of one view). The views are joined in memory
    as float16 (1.8 GB for the shipped model) and fed in shuffled chunks, one chunk at a time as
    float32.

    With `checkpoint`, the state after each epoch is kept there and a run that was stopped resumes
    after its last finished epoch (the optimiser's moments restart)."""
    keras.utils.set_random_seed(seed)
    grid = keras.Input(top.input_shape[1:])
    x = top(grid)
    for layer in pooling_layers(config.pooling):
        x = layer(x)
    model = keras.Model(grid, head(x))
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
    )
    views, y_one = train
    x = np.concatenate(views)
    y = np.concatenate([y_one for _ in views])
    weights = balanced_class_weights(y, 2)
    sample_weight = np.where(y == 1, weights[1], weights[0])

    def score() -> dict[str, float]:
        aucs = {
            k: metrics.auc(val[1], probabilities(head, pooled_features(top, g, pooling=config.pooling)))
            for k, g in val[0].items()
        }
        return {**aucs, "hard": hard_auc(aucs)}

    resumed = _load_checkpoint(checkpoint, top, head) if checkpoint else None
    if resumed:
        history, best = resumed
        log.info("fine-tuning: resumed after epoch %d (best %d)", len(history) - 1, best[1])
    else:
        history = [score()]
        best = (history[0]["hard"], 0, top.get_weights(), head.get_weights())
        log.info("fine-tuning: epoch 0 (frozen) %s", history[0])
    for epoch in range(len(history), config.epochs + 1):
        order = np.random.default_rng([seed, epoch]).permutation(len(y))
        for start in range(0, len(order), config.chunk):
            chunk = np.sort(order[start : start + config.chunk])
            model.fit(x[chunk].astype(np.float32), y[chunk].astype(np.float32), sample_weight=sample_weight[chunk],
                      batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0)
        history.append(score())
        log.info("fine-tuning: epoch %d %s", epoch, history[-1])
        if history[-1]["hard"] > best[0]:
            best = (history[-1]["hard"], epoch, top.get_weights(), head.get_weights())
        if checkpoint:
            _save_checkpoint(checkpoint, top, head, history, best)
    top.set_weights(best[2])
    head.set_weights(best[3])
    return {"config": vars(config), "history": history, "best_epoch": best[1]}


def _save_checkpoint(
    folder: Path, top: keras.Model, head: keras.Model, history: list[dict[str, float]], best: Best
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"top{i}": w for i, w in enumerate(top.get_weights())}
    arrays |= {f"head{i}": w for i, w in enumerate(head.get_weights())}
    arrays |= {f"best_top{i}": w for i, w in enumerate(best[2])}
    arrays |= {f"best_head{i}": w for i, w in enumerate(best[3])}
    state = {"history": history, "best_hard": best[0], "best_epoch": best[1]}
    partial = folder / "partial-state.npz"
    np.savez(partial, state=np.array(json.dumps(state)), **arrays)
    partial.rename(folder / "state.npz")  # one file, replaced whole: weights and history always agree


def _load_checkpoint(folder: Path, top: keras.Model, head: keras.Model) -> tuple[list[dict[str, float]], Best] | None:
    if not (folder / "state.npz").exists():
        return None
    with np.load(folder / "state.npz") as arrays:
        state = json.loads(str(arrays["state"]))
        def weights(prefix: str, model: keras.Model) -> list[np.ndarray]:
            return [arrays[f"{prefix}{i}"] for i in range(len(model.get_weights()))]

        top.set_weights(weights("top", top))
        head.set_weights(weights("head", head))
        best: Best = (state["best_hard"], state["best_epoch"], weights("best_top", top), weights("best_head", head))
    return state["history"], best
