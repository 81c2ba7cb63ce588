"""The CLI's help as a user meets it: the installed program's name, and plain metavars instead of typer's type
placeholders (`<bool>`, `<list[str]>`)."""

from __future__ import annotations

import re
import sys

import pytest
from typer.testing import CliRunner

from client.cli import app, main

PLACEHOLDER = re.compile(r"<[a-z][^>]*>|\{[a-z]\w*\}")


def test_console_script_names_itself(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`pneumonia-client` is `client.cli:main` (client/pyproject.toml's [project.scripts])."""
    monkeypatch.setattr(sys, "argv", ["/opt/venv/bin/pneumonia-client", "--help"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    assert "Usage: pneumonia-client [OPTIONS] COMMAND [ARGS]..." in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["score"], ["evaluate"]], ids=["main", "score", "evaluate"])
def test_help_names_the_program_and_shows_plain_metavars(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], prog_name="pneumonia-client", env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert f"Usage: pneumonia-client {' '.join(command)}".rstrip() in result.output
    assert "python -m client" not in result.output
    assert PLACEHOLDER.findall(result.output) == []


def test_score_help_shows_metavars() -> None:
    result = CliRunner().invoke(app, ["score", "--help"], prog_name="pneumonia-client", env={"COLUMNS": "160"})
    assert "pneumonia-client score [OPTIONS] INPUTS..." in result.output
    for option, metavar in (("--out", "FILE"), ("--url", "URL"), ("--concurrency", "N"), ("--timeout", "SECONDS")):
        assert re.search(rf"{option}\b.*\s{metavar}\s", result.output), (option, metavar)
