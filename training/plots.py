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
