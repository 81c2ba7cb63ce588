"""A development stand-in for TensorFlow Serving — NOT TensorFlow Serving.

TF Serving cannot be installed on the development machines or in CI (no binary, no Docker). This is
a small gRPC server of ours that speaks the parts of the TF Serving API the gateway uses, with the
real `tensorflow_serving.apis` protobufs, so the gateway's gRPC path runs for real on loopback:

- `PredictionService.Predict` on any signature of the model (model name, `version` or `version_label`
  honoured; `output_filter` honoured; `model_spec.version` in the answer),
- `PredictionService.GetModelMetadata` (`signature_def`),
- `ModelService.GetModelStatus`.

Like Serving it reads the `<model_root>/<version>/` layout, serves every version directory it finds
(Serving's `all` version policy), the highest by default, and picks up version directories added or
removed on disk by polling. Models are loaded with `radiograph.savedmodel.LoadedModel`, so a version
that breaks the model contract is refused. `Faults` injects a delay or an error status for tests.

Warm-up records in `assets.extra/` are replayed at load, as Serving does.
Not provided: batching, the REST API, model config files, Classify/Regress/MultiInference.

    python -m localserving --model-dir models/pneumonia --port 8500
"""

from localserving.repository import ModelRepository
from localserving.servable import ServableError
from localserving.server import BackgroundServer, start_server
from localserving.servicers import Faults

__all__ = ["BackgroundServer", "Faults", "ModelRepository", "ServableError", "start_server"]
