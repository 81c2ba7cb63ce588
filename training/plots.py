"""Report figures a person can read: confusion matrices, ROC, PR and reliability curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve


def confusion_matrix(figures: dict[str, float], labels: tuple[str, str], title: str, path: Path) -> None:
    cells = np.array([[figures["tn"], figures["fp"]], [figures["fn"], figures["tp"]]])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(cells, cmap="Blues")
    for (row, col), value in np.ndenumerate(cells):
        ax.text(col, row, f"{int(value)}", ha="center", va="center",
                color="white" if value > cells.max() / 2 else "black", fontsize=14)
    ax.set_xticks([0, 1], [f"pred {labels[0]}", f"pred {labels[1]}"])
    ax.set_yticks([0, 1], [f"true {labels[0]}", f"true {labels[1]}"])
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def curves(y: np.ndarray, p: np.ndarray, points: dict[str, float], out: Path, title: str) -> None:
    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot(fpr, tpr, lw=2)
    for name, threshold in points.items():
        sens = float(np.mean(p[y == 1] >= threshold))
        spec = float(np.mean(p[y == 0] < threshold))
        ax.plot(1 - spec, sens, "o", label=f"{name} (t={threshold:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=f"ROC — {title}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=120)
    plt.close(fig)

    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot(recall, precision, lw=2)
    ax.set(xlabel="recall (sensitivity)", ylabel="precision", title=f"PR — {title}", ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(out / "pr.png", dpi=120)
    plt.close(fig)

    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot(predicted, observed, "o-", lw=2, label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    ax.set(xlabel="predicted P(pneumonia)", ylabel="observed fraction pneumonia",
           title=f"Reliability — {title}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=120)
    plt.close(fig)


def subtype_sensitivity(points: dict[str, dict], out: Path, title: str) -> None:
    """Sensitivity for bacterial and viral pneumonia at each operating point."""
    names = list(points)
    subtypes = sorted({s for figures in points.values() for s in figures.get("sensitivity_by_subtype", {})})
    if not subtypes:
        return
    fig, ax = plt.subplots(figsize=(5, 3.6))
    width = 0.8 / len(subtypes)
    for k, subtype in enumerate(subtypes):
        values = [points[n]["sensitivity_by_subtype"].get(subtype, 0.0) for n in names]
        bars = ax.bar(np.arange(len(names)) + k * width, values, width, label=subtype)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(np.arange(len(names)) + width * (len(subtypes) - 1) / 2, names)
    ax.set(ylabel="sensitivity", ylim=(0, 1.1), title=f"Sensitivity by pneumonia type — {title}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "sensitivity_by_subtype.png", dpi=120)
    plt.close(fig)


def subtype_confusion(figures: dict, out: Path, title: str) -> None:
    labels = figures["labels"]
    cells = np.array(figures["confusion"])
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.imshow(cells, cmap="Purples")
    for (row, col), value in np.ndenumerate(cells):
        ax.text(col, row, str(int(value)), ha="center", va="center",
                color="white" if value > cells.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), [f"pred {n}" for n in labels], fontsize=8)
    ax.set_yticks(range(len(labels)), [f"true {n}" for n in labels], fontsize=8)
    ax.set_title(f"Subtype (argmax) — {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "confusion_subtype.png", dpi=120)
    plt.close(fig)
