"""The baseline: a naive scoring server, as the published Flask apps for this data set are written.

One thread per request (stdlib `ThreadingHTTPServer`, the model of Flask's threaded dev server); each
request does a full-size PIL decode, a resize, and one model call on one image. It uses the same
SavedModel through its signature (cheaper than Keras `model.predict`, so the baseline is, if
anything, flattered).

    .venv/bin/python -m benchmarks.naive_server --port 8090
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated

import typer

from radiograph import imaging
from radiograph.savedmodel import LoadedModel

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "pneumonia"


def make_handler(model: LoadedModel) -> type[BaseHTTPRequestHandler]:
    size = model.metadata.input_height

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._send(200, {"status": "ok"})

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                pixels = imaging.load_radiograph(data, size).pixels  # full decode, then resize
            except imaging.ImageError as exc:
                self._send(400, {"error": str(exc)})
                return
            probability = float(model.predict(pixels[None, :, :, None])[0])
            self._send(200, {"probability": probability})

        def _send(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8090) -> None:
    model = LoadedModel.from_dir(MODEL_DIR)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(model))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    typer.run(main)
