"""Accuracy, sensitivity, specificity and ROC AUC of a results file whose images sit in NORMAL/ and PNEUMONIA/
folders. The labels compared are the gateway's own (at the operating point it used); AUC uses the probabilities."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from client._results import Row

POSITIVE, NEGATIVE = "PNEUMONIA", "NORMAL"


def truth_of(path: str) -> str | None:
    """The label folder nearest the file, or None when the path has none."""
    for part in reversed(PurePath(path).parts[:-1]):
        if part in (POSITIVE, NEGATIVE):
            return part
    return None


def rank_auc(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """ROC AUC as the Mann-Whitney U statistic: the chance that a random positive outscores a random negative,
    ties counting one half (average ranks). None without both classes."""
    n_pos = sum(positives)
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for index in order[start : end + 1]:
            ranks[index] = (start + end) / 2 + 1
        start = end + 1
    positive_rank_sum = sum(rank for rank, positive in zip(ranks, positives, strict=True) if positive)
    return (positive_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class Evaluation:
    true_positives: int
    false_negatives: int
    true_negatives: int
    false_positives: int
    auc: float | None
    unlabelled: int
    """Scored rows whose path has no NORMAL/ or PNEUMONIA/ folder."""
    failed: int
    """Rows with an error (not scored)."""

    @property
    def scored(self) -> int:
        return self.true_positives + self.false_negatives + self.true_negatives + self.false_positives

    @property
    def accuracy(self) -> float | None:
        return _ratio(self.true_positives + self.true_negatives, self.scored)

    @property
    def sensitivity(self) -> float | None:
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def specificity(self) -> float | None:
        return _ratio(self.true_negatives, self.true_negatives + self.false_positives)

    def as_dict(self) -> dict[str, float | int | None]:
        names = ("scored", "accuracy", "sensitivity", "specificity", "auc", "true_positives", "false_negatives",
                 "true_negatives", "false_positives", "unlabelled", "failed")
        return {name: getattr(self, name) for name in names}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def evaluate(rows: Iterable[Row]) -> Evaluation:
    counts = {"tp": 0, "fn": 0, "tn": 0, "fp": 0, "unlabelled": 0, "failed": 0}
    scores: list[float] = []
    positives: list[bool] = []
    for row in rows:
        truth = truth_of(row.path)
        if not row.ok or row.probability is None:
            counts["failed"] += 1
        elif truth is None:
            counts["unlabelled"] += 1
        else:
            predicted = row.label == POSITIVE
            actual = truth == POSITIVE
            counts[("t" if predicted == actual else "f") + ("p" if predicted else "n")] += 1
            scores.append(row.probability)
            positives.append(actual)
    return Evaluation(
        counts["tp"], counts["fn"], counts["tn"], counts["fp"], rank_auc(scores, positives),
        counts["unlabelled"], counts["failed"],
    )
