"""`pneumonia-client` (or `python -m client`): score images in bulk into a resumable results file, and evaluate one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from client._batch import score_paths
from client._client import Client
from client._evaluate import evaluate as evaluate_rows
from client._inputs import expand
from client._results import NotAResultsFile, ResultsFile
from client._retry import RetryPolicy


class _Argument(TyperArgument):
    """Shown as its upper-case name (`INPUTS...`), with no type placeholder beside it."""

    @property
    def display_name_raw(self) -> str:
        return (self.metavar or self.name or "").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"


class _Flag(TyperOption):
    """A flag takes no value: nothing is shown beside it."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _plain(params: list[Any]) -> list[Any]:
    """typer prints a type placeholder beside every parameter (`<bool>`, `<list[str]>`) and `{inputs}` in the usage
    line; the help shows what command-line users expect instead: options their metavar (given below), flags
    nothing, arguments their name."""
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption and param.is_flag:
            param.__class__ = _Flag
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


app = typer.Typer(
    cls=_Group,
    help="Client of the pneumonia X-ray gateway: batch scoring and evaluation.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command(cls=_Command)
def score(
    inputs: Annotated[list[str], typer.Argument(help="Directories (recursive), globs, images, or .txt path lists.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="FILE", help="Results file, .csv or .jsonl; re-runs resume it.")
    ],
    url: Annotated[str, typer.Option(envvar="XRAY_GATEWAY_URL", metavar="URL", help="Gateway base URL.")],
    concurrency: Annotated[int, typer.Option(min=1, max=64, metavar="N", help="Requests in flight at once.")] = 4,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="XRAY_API_KEY", metavar="KEY", help="API key (better from the environment)."),
    ] = None,
    operating_point: Annotated[
        str | None, typer.Option(metavar="NAME", help="Named threshold; default: the gateway's.")
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, metavar="SECONDS", help="Seconds per HTTP attempt.")] = 30.0,
    retry_budget: Annotated[
        float, typer.Option(min=0.0, metavar="SECONDS", help="Seconds one image may spend on retries.")
    ] = 120.0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Score every image; one row per image is appended to the results file (--out) as it completes. Running the
    same command again skips images already scored and retries failed ones. Exits 1 when any image failed."""
    try:
        results = ResultsFile(out)
        paths = expand(inputs)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    retry = RetryPolicy(total_s=retry_budget)
    with Client(url, api_key, timeout=timeout, retry=retry) as client:
        try:
            summary = score_paths(
                client, paths, results, concurrency=concurrency, operating_point=operating_point, progress=progress
            )
        except NotAResultsFile as exc:
            raise typer.BadParameter(str(exc), param_hint="--out") from exc
    for line in summary.lines():
        typer.echo(line)
    if summary.failed:
        typer.echo(f"{summary.failed} images failed; their errors are in {out}. Run again to retry them.", err=True)
        raise typer.Exit(1)


@app.command(cls=_Command)
def evaluate(
    results: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A results file written by score.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as one JSON object.")] = False,
) -> None:
    """Accuracy, sensitivity, specificity (of the gateway's labels) and ROC AUC, with the true label taken from
    the NORMAL/ or PNEUMONIA/ folder in each path."""
    try:
        report = evaluate_rows(ResultsFile(results).read().values())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    numbers = report.as_dict()
    if as_json:
        typer.echo(json.dumps(numbers))
        return
    for name, value in numbers.items():
        typer.echo(f"{name:>16}  {'n/a' if value is None else f'{value:.4f}' if isinstance(value, float) else value}")
    if not report.scored:
        raise typer.Exit(1)


def main(prog_name: str = "pneumonia-client") -> None:
    """The `pneumonia-client` console script (`python -m client` passes its own name)."""
    app(prog_name=prog_name)
