"""Imports flow one way: the product never imports the tests, the dev tools or the benchmarks; the benchmarks
never import the tests; nobody imports a conftest module; `radiograph/` (what training and serving share) and
the client SDK stand on their own; the observability layer does not reach up into the data plane; and only
`radiograph/` touches a loaded model's private members."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.live_servers import REPO

PRODUCT = ("radiograph", "serving", "client", "localserving", "training")
LOADED_MODEL_PRIVATE = {"_model", "_tf", "_root", "_functions"}


def modules(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def offenders(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in modules(*folders):
        for name in sorted(imported(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


@pytest.mark.parametrize(
    ("folders", "forbidden"),
    [
        (PRODUCT, ("tests", "devtools", "benchmarks")),
        (("benchmarks", "devtools"), ("tests",)),
        (("radiograph",), ("serving", "client", "localserving", "training")),
        (("client",), ("radiograph", "serving", "localserving", "training", "tensorflow")),
        (("serving/observability",), ("serving.scoring", "serving.api", "serving.main")),
    ],
    ids=["product", "benchmarks", "radiograph", "client", "observability"],
)
def test_imports_flow_one_way(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    assert offenders(folders, forbidden) == []


def test_no_module_imports_a_conftest() -> None:
    found = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules("tests", "benchmarks", "devtools")
        for name in imported(path)
        if name == "conftest" or name.endswith(".conftest")
    ]
    assert found == []


def test_only_radiograph_touches_a_models_private_members() -> None:
    found = []
    for path in modules(*PRODUCT, "tests", "benchmarks", "devtools", "scripts"):
        if path.is_relative_to(REPO / "radiograph"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in LOADED_MODEL_PRIVATE and not (
                isinstance(node.value, ast.Name) and node.value.id == "self"
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
    assert found == []


def test_the_checks_see_an_offending_import(tmp_path: Path) -> None:
    """The scanner itself can fail: an upward import in a module is found."""
    module = tmp_path / "audit.py"
    module.write_text("from serving.scoring import Verdict\nimport tests.live_servers\n", encoding="utf-8")
    assert imported(module) == {"serving.scoring", "tests.live_servers"}
