"""`python -m localserving --model-dir models/pneumonia --port 8500`: the TF Serving stand-in (not TF Serving)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import grpc
import typer

from localserving.repository import ModelRepository
from localserving.server import start_server
from localserving.servicers import Faults

app = typer.Typer(add_completion=False, help=__doc__)
log = logging.getLogger("localserving")


def parse_labels(pairs: list[str]) -> dict[str, int]:
    labels = {}
    for pair in pairs:
        name, _, version = pair.partition("=")
        if not name or not version.isdigit():
            raise typer.BadParameter(f"{pair!r}: expected label=version, e.g. stable=1")
        labels[name] = int(version)
    return labels


async def serve(repository: ModelRepository, faults: Faults, host: str, port: int, poll_s: float) -> None:
    await repository.refresh()
    running = await start_server(repository, faults, host, port)
    log.info("serving %s versions %s on %s:%d", repository.name, sorted(repository.servables), host, running.port)
    watch = asyncio.create_task(repository.watch(poll_s))
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    watch.cancel()
    await running.server.stop(grace=2)


@app.command()
def main(
    model_dir: Annotated[Path, typer.Option(help="Model root holding <version>/saved_model.pb directories.")],
    model_name: Annotated[str | None, typer.Option(help="Name clients ask for; default: the root's name.")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="gRPC port (TF Serving's default is 8500).")] = 8500,
    label: Annotated[list[str] | None, typer.Option(help="Version label: --label stable=1 --label canary=2.")] = None,
    poll_s: Annotated[float, typer.Option(help="How often the model root is scanned for new versions.")] = 1.0,
    delay_s: Annotated[float, typer.Option(help="Fault injection: delay added to every Predict.")] = 0.0,
    fail_code: Annotated[str | None, typer.Option(help="Fault injection: every Predict fails with it.")] = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    faults = Faults(delay_s, grpc.StatusCode[fail_code.upper()] if fail_code else None)
    repository = ModelRepository(model_dir, model_name or model_dir.resolve().name, parse_labels(label or []))
    asyncio.run(serve(repository, faults, host, port, poll_s))


if __name__ == "__main__":
    app()
