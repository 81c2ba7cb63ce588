"""The results file's resume rules, INPUT expansion and the rank AUC: plain files, no gateway."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from client._evaluate import evaluate, rank_auc, truth_of
from client._inputs import NoImages, expand
from client._results import NotAResultsFile, ResultsFile, Row

OK = Row("/x/NORMAL/a.jpeg", "aa" * 32, "NORMAL", 0.1234567890123, 0.2216, "screening", "pneumonia", 3, "r1")
FAILED = Row("/x/PNEUMONIA/b.jpeg", "bb" * 32, request_id="r2", error="upstream_timeout: took too long")


@pytest.fixture(params=[".csv", ".jsonl"])
def results(request: pytest.FixtureRequest, tmp_path: Path) -> ResultsFile:
    return ResultsFile(tmp_path / f"results{request.param}")


def write(results: ResultsFile, rows: list[Row], torn: str = "") -> None:
    with results.appender() as out:
        for row in rows:
            out.append(row)
    with results.path.open("a", encoding="utf-8") as stream:
        stream.write(torn)


def test_rows_round_trip_exactly(results: ResultsFile) -> None:
    write(results, [OK, FAILED])
    assert list(results.read().values()) == [OK, FAILED]


def test_resume_keeps_one_finished_row_per_path(results: ResultsFile) -> None:
    newer = replace(OK, probability=0.5, request_id="r9")
    other = replace(OK, path="/x/NORMAL/c.jpeg", request_id="r3")
    write(results, [OK, FAILED, other, newer], torn=results._line(replace(OK, path="/x/NORMAL/d.jpeg"))[:-9])

    assert results.resume() == {OK.path, other.path}
    assert list(results.read().values()) == [newer, other]
    lines = results.path.read_text().splitlines()
    assert len(lines) == 2 + results.is_csv  # header, then one line per finished path

    write(results, [replace(FAILED, error=None, label="PNEUMONIA", probability=0.9, threshold=0.2)])
    assert results.resume() == {OK.path, other.path, FAILED.path}


def test_resume_leaves_a_clean_file_untouched(results: ResultsFile) -> None:
    write(results, [OK])
    before = results.path.stat().st_mtime_ns, results.path.read_bytes()
    assert results.resume() == {OK.path}
    assert (results.path.stat().st_mtime_ns, results.path.read_bytes()) == before


def test_refuses_to_rewrite_a_foreign_file(tmp_path: Path) -> None:
    for name, text in (("other.csv", "a,b\n1,2\n"), ("other.jsonl", '{"a": 1}\n')):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(NotAResultsFile):
            ResultsFile(path).resume()
        assert path.read_text() == text


def test_only_csv_or_jsonl(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        ResultsFile(tmp_path / "results.txt")


def test_expand_directories_globs_and_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("d/NORMAL/a.jpeg", "d/NORMAL/sub/b.JPG", "d/PNEUMONIA/c.png", "d/PNEUMONIA/e.dcm", "d/notes.txt",
                 "d/f.gif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_text("# images\nd/NORMAL/a.jpeg\n\nmissing.jpeg\n")
    found = expand(["d", "d/**/*.png", str(listing)])
    expected = ["d/NORMAL/a.jpeg", "d/NORMAL/sub/b.JPG", "d/PNEUMONIA/c.png", "d/PNEUMONIA/e.dcm", "missing.jpeg"]
    assert found == [str(tmp_path / name) for name in expected]
    for bad in ("nowhere", "d/*.bmp"):
        with pytest.raises(NoImages):
            expand([bad])


@pytest.mark.parametrize("seed", range(5))
def test_rank_auc_equals_sklearn(seed: int) -> None:
    rng = random.Random(seed)
    positives = [rng.random() < 0.6 for _ in range(200)]
    scores = [round(rng.random() * 0.5 + 0.4 * positive, 2) for positive in positives]  # rounding makes ties
    assert rank_auc(scores, positives) == pytest.approx(roc_auc_score(positives, scores), abs=1e-12)
    assert rank_auc(scores, [True] * 200) is None


def test_evaluate_counts() -> None:
    rows = [
        replace(OK, path="/d/PNEUMONIA/1.jpeg", label="PNEUMONIA", probability=0.9),  # TP
        replace(OK, path="/d/PNEUMONIA/2.jpeg", label="NORMAL", probability=0.1),  # FN
        replace(OK, path="/d/NORMAL/3.jpeg", label="NORMAL", probability=0.2),  # TN
        replace(OK, path="/d/NORMAL/4.jpeg", label="PNEUMONIA", probability=0.95),  # FP
        replace(OK, path="/d/elsewhere/5.jpeg"),
        FAILED,
    ]
    report = evaluate(rows)
    assert report.as_dict() == {
        "scored": 4, "accuracy": 0.5, "sensitivity": 0.5, "specificity": 0.5, "auc": 0.25,
        "true_positives": 1, "false_negatives": 1, "true_negatives": 1, "false_positives": 1,
        "unlabelled": 1, "failed": 1,
    }
    assert truth_of("/data/PNEUMONIA/NORMAL/x.jpeg") == "NORMAL"
