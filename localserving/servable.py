"""One loaded model version, as Serving calls it: a servable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from radiograph.savedmodel import LoadedModel


class ServableError(Exception):
    """A request names a model, version or label that is not served; carries the gRPC status TF Serving uses."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Servable:
    version: int
    model: LoadedModel
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    """As stored in `saved_model.pb` (what GetModelMetadata returns)."""


def load_servable(root: Path, version: int) -> Servable:
    """Loads with `LoadedModel`, which refuses a version that breaks the model contract."""
    model = LoadedModel.from_dir(root, version)
    saved_model = saved_model_pb2.SavedModel.FromString((model.path / "saved_model.pb").read_bytes())
    defs = {
        key: value
        for key, value in saved_model.meta_graphs[0].signature_def.items()
        if not key.startswith("__")
    }
    return Servable(version, model, defs)
