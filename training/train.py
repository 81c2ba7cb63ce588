"""Head training on cached backbone features, model selection on the hard validation set, and the
operating points.

Selection and thresholds never look at the test split: they use the patient-grouped validation
part of `train/`, clean and under strong acquisition shift (`shift*` views).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from radiograph.contract import SCREENING, OperatingPoint
from training import metrics
from training.data import SUBTYPES, Example, labels_of
from training.graph import build_backbone, build_head, build_subtype_head, pooled_features, split_backbone

log = logging.getLogger(__name__)

SCREENING_SENSITIVITY = 0.98
THRESHOLD_MARGIN = 1e-5
"""Stored thresholds sit at least this far below the validation score they were chosen at."""
BALANCED = "balanced"


@dataclass(frozen=True)
class HeadConfig:
    l2: float
    dropout: float = 0.3
    epochs: int = 30
    label_smoothing: float = 0.05
    learning_rate: float = 1e-3


def balanced_class_weights(targets: np.ndarray, n_classes: int) -> dict[int, float]:
    """Class index → weight, so that every class carries the same total weight in the loss."""
    counts = np.bincount(targets, minlength=n_classes)
    return {k: len(targets) / (n_classes * max(int(c), 1)) for k, c in enumerate(counts)}


def fit_head(x: np.ndarray, y: np.ndarray, config: HeadConfig, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    head = build_head(x.shape[1], config.dropout, config.l2)
    head.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
    )
    # balanced classes: a missed NORMAL costs as much as a missed PNEUMONIA in training; the
    # screening threshold then moves the operating point towards sensitivity
    weights = balanced_class_weights(y, 2)
    head.fit(x, y.astype(np.float32), epochs=config.epochs, batch_size=64, class_weight=weights, verbose=0)
    return head


@dataclass(frozen=True)
class FineTuneConfig:
    epochs: int
    learning_rate: float = 1e-4
    label_smoothing: float = 0.05
    batch_size: int = 32
    chunk: int = 2048


def fine_tune(
    top: keras.Model,
    head: keras.Model,
    train: tuple[list[np.ndarray], np.ndarray],
    val: tuple[dict[str, np.ndarray], np.ndarray],
    config: FineTuneConfig,
    seed: int,
    checkpoint: Path | None = None,
) -> dict[str, object]:
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
    model = keras.Model(grid, head(keras.layers.GlobalAveragePooling2D()(top(grid))))
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
        aucs = {k: metrics.auc(val[1], probabilities(head, pooled_features(top, g))) for k, g in val[0].items()}
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


Best = tuple[float, int, list[np.ndarray], list[np.ndarray]]
"""(hard AUC, epoch, top block weights, head weights) of the best epoch so far."""


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


def hard_auc(aucs: dict[str, float]) -> float:
    """Mean AUC over the hard validation views: every view but the clean one (shift-augmented and
    shortcut-balanced); all views when there are no others."""
    return float(np.mean([v for k, v in aucs.items() if not k.endswith("clean")] or list(aucs.values())))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def probabilities(head: keras.Model, x: np.ndarray) -> np.ndarray:
    return sigmoid(head.predict(x, batch_size=1024, verbose=0)[:, 0])


def operating_points(views: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, OperatingPoint]:
    """`screening`: the threshold keeps sensitivity >= 0.98 on *every* validation view (clean, each
    shifted copy, each shortcut-balanced copy), so the margin for acquisition shift is built in.
    `balanced`: Youden's J on all views pooled."""
    screening = min(
        metrics.threshold_for_sensitivity(y, p, SCREENING_SENSITIVITY) for y, p in views.values()
    )
    y_all = np.concatenate([y for y, _ in views.values()])
    p_all = np.concatenate([p for _, p in views.values()])
    balanced = metrics.youden_threshold(y_all, p_all)

    def point(chosen: float, rule: str) -> OperatingPoint:
        # the chosen threshold equals a validation score; stored rounded *down* with a margin for the
        # float differences between cached-feature scores and the exported graph's, so no image at the
        # boundary changes side
        threshold = math.floor((chosen - THRESHOLD_MARGIN) * 1e5) / 1e5
        figures = {
            f"{name}_{key}": value
            for name, (y, p) in views.items()
            for key, value in metrics.at_threshold(y, p, threshold).items()
            if key in ("sensitivity", "specificity", "accuracy")
        }
        return OperatingPoint(threshold=threshold, rule=rule, validation=figures)

    return {
        SCREENING: point(
            screening,
            f"highest threshold with sensitivity >= {SCREENING_SENSITIVITY} on every patient-grouped "
            f"validation view ({', '.join(views)})",
        ),
        BALANCED: point(balanced, "Youden's J on all validation views pooled"),
    }


def select_and_fit(
    features: dict[str, np.ndarray],
    split: dict[str, list[Example]],
    grid: list[HeadConfig],
    seed: int,
    checkpoint: Path | None = None,
) -> tuple[keras.Model, HeadConfig, dict[str, object]]:
    """Fit one head per config on all train views, keep the best mean AUC over the hard validation
    views. With `checkpoint`, the choice is kept there and reused by a resumed run."""
    if checkpoint and (checkpoint / "selection.json").exists():
        chosen = json.loads((checkpoint / "selection.json").read_text())
        config = HeadConfig(**chosen["config"])
        head = build_head(next(iter(features.values())).shape[1], config.dropout, config.l2)
        head.load_weights(checkpoint / "head.weights.h5")
        log.info("head: resumed %s", config)
        return head, config, chosen["selection"]
    y_train = labels_of(split["train"])
    y_val = labels_of(split["val"])
    train_views = sorted(k for k in features if k.startswith("train_"))
    val_views = sorted(k for k in features if k.startswith("val_"))
    x = np.concatenate([features[k] for k in train_views])
    y = np.concatenate([y_train for _ in train_views])
    trials = []
    best: tuple[float, keras.Model, HeadConfig] | None = None
    for config in grid:
        head = fit_head(x, y, config, seed)
        aucs = {k: metrics.auc(y_val, probabilities(head, features[k])) for k in val_views}
        hard = hard_auc(aucs)
        trials.append({"config": vars(config), "val_auc": aucs, "hard_val_auc": hard})
        log.info("head %s: hard-val AUC %.4f %s", config, hard, aucs)
        if best is None or hard > best[0]:
            best = (hard, head, config)
    assert best is not None
    selection = {"train_views": train_views, "val_views": val_views, "trials": trials}
    if checkpoint:
        checkpoint.mkdir(parents=True, exist_ok=True)
        best[1].save_weights(checkpoint / "head.weights.h5")
        (checkpoint / "selection.json").write_text(json.dumps({"config": vars(best[2]), "selection": selection}))
    return best[1], best[2], selection


def subtype_targets(examples: list[Example]) -> np.ndarray:
    """Index into SUBTYPES, -1 where the file name does not say."""
    return np.array([SUBTYPES.index(e.subtype) if e.subtype in SUBTYPES else -1 for e in examples])


def fit_subtype_head(x: np.ndarray, targets: np.ndarray, l2: float, epochs: int, seed: int) -> keras.Model:
    """Normal / bacterial / viral softmax head on the same features (balanced class weights)."""
    keras.utils.set_random_seed(seed)
    known = targets >= 0
    x, targets = x[known], targets[known]
    head = build_subtype_head(x.shape[1], len(SUBTYPES), l2)
    head.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    weights = balanced_class_weights(targets, len(SUBTYPES))
    head.fit(x, targets, epochs=epochs, batch_size=64, class_weight=weights, verbose=0)
    return head


def subtype_report(logits: np.ndarray, targets: np.ndarray) -> dict[str, object]:
    """Accuracy and the confusion matrix of subtype logits [n, classes] against `subtype_targets`."""
    known = targets >= 0
    confusion = np.zeros((len(SUBTYPES), len(SUBTYPES)), int)
    np.add.at(confusion, (targets[known], np.argmax(logits[known], axis=1)), 1)
    return {"labels": list(SUBTYPES), "confusion": confusion.tolist(),
            "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1))}


@dataclass(frozen=True)
class Member:
    """One trained member: its fine-tuned top block and its two heads."""

    top: keras.Model
    head: keras.Model
    subtype_head: keras.Model


@dataclass(frozen=True)
class TrainedRun:
    """A `train` run (one member) or an `ensemble` run (several members sharing the frozen bottom)."""

    summary: dict[str, Any]
    bottom: keras.Model
    members: list[Member]


ENSEMBLE_MEMBERS = "members"
"""Folder of an ensemble run holding a copy of each member's run."""


def member_dirs(run_dir: Path) -> list[Path]:
    """The run folders of the members of a run: its own for a `train` run."""
    summary = json.loads((run_dir / "training.json").read_text())
    names = summary.get(ENSEMBLE_MEMBERS)
    return [run_dir / ENSEMBLE_MEMBERS / name for name in names] if names else [run_dir]


def untrained_member(top: keras.Model, config: HeadConfig) -> Member:
    """`top` with fresh heads of `config`'s architecture: a member for trained weights to be loaded into."""
    features = top.output_shape[-1]
    return Member(top, build_head(features, config.dropout, config.l2),
                  build_subtype_head(features, len(SUBTYPES), config.l2))


def load_members(run_dirs: list[Path], weights: str, size: int) -> tuple[keras.Model, list[Member]]:
    """(frozen bottom, members) of what `save_run` wrote: the backbone is built once; each member
    gets a top block of its own (a copy of the backbone's, so members do not share weights)."""
    bottom, template = split_backbone(build_backbone(size, weights))
    members = []
    for run_dir in run_dirs:
        config = HeadConfig(**json.loads((run_dir / "training.json").read_text())["head"])
        member = untrained_member(keras.models.clone_model(template), config)
        member.top.load_weights(run_dir / "top.weights.h5")
        member.head.load_weights(run_dir / "head.weights.h5")
        member.subtype_head.load_weights(run_dir / "subtype.weights.h5")
        members.append(member)
    return bottom, members


def load_run(run_dir: Path, weights: str, size: int) -> TrainedRun:
    """A run as `export` needs it: the frozen bottom once, and every member."""
    summary = json.loads((run_dir / "training.json").read_text())
    bottom, members = load_members(member_dirs(run_dir), weights, size)
    return TrainedRun(summary, bottom, members)


def save_run(
    run_dir: Path, top: keras.Model, head: keras.Model, subtype_head: keras.Model, summary: dict[str, object]
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    top.save_weights(run_dir / "top.weights.h5")
    head.save_weights(run_dir / "head.weights.h5")
    subtype_head.save_weights(run_dir / "subtype.weights.h5")
    (run_dir / "training.json").write_text(json.dumps(summary, indent=2, default=str))
