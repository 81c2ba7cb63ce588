"""The data set: patient IDs, de-duplication, and a leak-free patient-grouped split."""

from __future__ import annotations

from pathlib import Path

from training.data import grouped_split, index_split, patient_id, subtype_of


def test_patient_ids() -> None:
    assert patient_id("person1000_bacteria_2931.jpeg") == "person1000"
    assert patient_id("person1000_virus_1681.jpeg") == "person1000"
    assert patient_id("IM-0115-0001.jpeg") == "im115"
    assert patient_id("NORMAL2-IM-0115-0001.jpeg") == "im115"
    assert patient_id("IM-0117-0001-0002.jpeg") == "im117"
    assert subtype_of("person1_virus_6.jpeg", 1) == "virus"
    assert subtype_of("IM-0115-0001.jpeg", 0) == "normal"


def test_split_is_grouped_and_deduplicated(data_dir: Path) -> None:
    examples = index_split(data_dir, "train")
    assert len({e.sha256 for e in examples}) == len(examples)
    assert len(index_split(data_dir, "train", deduplicate=False)) == 5216
    train, val = grouped_split(examples, 0.15, seed=7)
    assert not {e.patient for e in train} & {e.patient for e in val}
    assert not {e.sha256 for e in train} & {e.sha256 for e in val}
    assert 0.12 < len(val) / len(examples) < 0.18
    for label in (0, 1):
        share = sum(e.label == label for e in val) / sum(e.label == label for e in examples)
        assert 0.13 < share < 0.17
    again, _ = grouped_split(examples, 0.15, seed=7)
    assert [e.path for e in again] == [e.path for e in train]
