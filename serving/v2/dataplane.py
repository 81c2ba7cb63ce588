"""Metadata, readiness and inference of the Open Inference Protocol over the gateway's one data plane: the
transports (REST, gRPC) turn requests into `tensors.InferRequest`; this module checks them against the model,
scores through `Scorer` (decode, model, threshold, metrics, drift) and turns the verdicts into output tensors.

The gateway serves one model version at a time (the newest embedded one, or the one TF Serving answers with for
its label or default): `/versions/{v}` answers for that version only, and 404 for any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radiograph.contract import ModelMetadata, resolve_model_dir
from serving import errors
from serving.config import Settings
from serving.scoring import Scorer
from serving.v2 import tensors
from serving.v2.tensors import InferRequest, InferResponse, ModelDescription, Tensor
from serving.verdict import Verdict

SERVER_NAME = "pneumonia-xray-gateway"
EXTENSIONS = ["binary_tensor_data", "parameters"]
INPUTS_HELP = (
    f"send one input: {tensors.IMAGE!r} (BYTES [n]: encoded JPEG, PNG or DICOM files) "
    f"or {tensors.PIXELS!r} (UINT8 [n, H, W, 1] at the model's input size)"
)


@dataclass(frozen=True)
class Scored:
    response: InferResponse
    images: list[bytes]
    """What was scored, one item per verdict (the pixels' bytes for `pixels`), for the audit log."""
    verdicts: list[Verdict]


class OpenInference:
    def __init__(self, scorer: Scorer, settings: Settings, server_version: str) -> None:
        self.scorer = scorer
        self.settings = settings
        self.server_version = server_version

    def server_metadata(self) -> tuple[str, str, list[str]]:
        return SERVER_NAME, self.server_version, EXTENSIONS

    async def ready(self) -> bool:
        return await self.scorer.backend.ready()

    async def model_ready(self, name: str, version: str) -> bool:
        self._resolve(name, version)
        return await self.ready()

    async def model_metadata(self, name: str, version: str) -> ModelDescription:
        self._resolve(name, version)
        served = self._served_version()
        metadata = await self.scorer.backend.metadata()
        return tensors.describe(name, [] if served is None else [str(served)], metadata)

    async def infer(self, name: str, version: str, request: InferRequest, request_id: str) -> Scored:
        self._resolve(name, version)
        metadata = await self.scorer.backend.metadata()
        wanted = self._wanted(request.outputs, metadata)
        point = request.parameters.get(tensors.OPERATING_POINT)
        if point is not None and not isinstance(point, str):
            raise errors.BadRequest(f"parameter {tensors.OPERATING_POINT!r} must be a string")
        tensor = self._one_input(request.inputs)
        if tensor.name == tensors.IMAGE:
            images = self._encoded_images(tensor)
            verdicts = await self.scorer.score_all(images, point, request_id)
        else:
            pixels = self._pixels(tensor)
            images = [row.tobytes() for row in pixels]
            verdicts = await self.scorer.score_pixels(pixels, point, request_id)
        answered = verdicts[0].model_version
        if version and int(version) != answered:
            raise self._not_served(name, version, answered)
        outputs = _outputs(verdicts, metadata.subtype_labels)
        response = InferResponse(
            name,
            str(answered),
            [outputs[output] for output in wanted],
            request.id,
            {tensors.OPERATING_POINT: verdicts[0].operating_point},
        )
        return Scored(response, images, verdicts)

    def _resolve(self, name: str, version: str) -> None:
        """404 for a model this gateway does not serve, or a version other than the one it serves."""
        if name != self.settings.model_name:
            raise errors.ModelNotFound(f"unknown model {name!r}; this gateway serves {self.settings.model_name!r}")
        if not version:
            return
        served = self._served_version()
        if not version.isdigit() or (served is not None and int(version) != served):
            raise self._not_served(name, version, served)

    def _served_version(self) -> int | None:
        """The version that answered last; before any answer, the embedded backend's (the newest under
        `GATEWAY_MODEL_DIR`); unknown for TF Serving until it has answered."""
        if self.scorer.served_version is not None:
            return self.scorer.served_version
        if self.settings.serving_address:
            return None
        try:
            return resolve_model_dir(self.settings.model_dir)[1]
        except FileNotFoundError:
            return None

    @staticmethod
    def _not_served(name: str, version: str, served: int | None) -> errors.ModelNotFound:
        serves = f"; it serves version {served}" if served is not None else ""
        return errors.ModelNotFound(f"version {version!r} of model {name!r} is not served by this gateway{serves}")

    @staticmethod
    def _wanted(requested: list[str] | None, metadata: ModelMetadata) -> list[str]:
        known = [spec.name for spec in tensors.describe("", [], metadata).outputs]
        if not requested:  # none named: all
            return known
        unknown = [name for name in requested if name not in known]
        if unknown:
            raise errors.BadRequest(f"unknown output(s) {', '.join(map(repr, unknown))}; the model has {known}")
        return requested

    def _one_input(self, inputs: list[Tensor]) -> Tensor:
        if len(inputs) != 1 or inputs[0].name not in (tensors.IMAGE, tensors.PIXELS):
            raise errors.BadRequest(f"{INPUTS_HELP}; got {[tensor.name for tensor in inputs]}")
        tensor = inputs[0]
        expected = "BYTES" if tensor.name == tensors.IMAGE else "UINT8"
        if tensor.datatype != expected:
            raise errors.BadRequest(f"input {tensor.name!r} must be {expected}, not {tensor.datatype}")
        count = tensor.shape[0] if tensor.shape else 0
        if count < 1:
            raise errors.BadRequest(f"input {tensor.name!r} holds no image (shape {tensor.shape})")
        if count > self.settings.max_batch_images:
            raise errors.BadRequest(f"at most {self.settings.max_batch_images} image(s) per request; got {count}")
        return tensor

    @staticmethod
    def _encoded_images(tensor: Tensor) -> list[bytes]:
        if len(tensor.shape) > 2 or tensor.shape[1:] not in ([], [1]) or len(tensor.data) != tensor.shape[0]:
            raise errors.BadRequest(
                f"input {tensors.IMAGE!r} must have shape [n] (or [n, 1]), one file per element; "
                f"got shape {tensor.shape} with {len(tensor.data)} element(s)"
            )
        return [bytes(item) for item in tensor.data]

    @staticmethod
    def _pixels(tensor: Tensor) -> np.ndarray:
        pixels = np.asarray(tensor.data)
        if pixels.ndim == 4 and pixels.shape[3] == 1:
            pixels = pixels[..., 0]
        return pixels


def _outputs(verdicts: list[Verdict], subtype_labels: tuple[str, ...]) -> dict[str, Tensor]:
    n = len(verdicts)
    outputs = {
        tensors.PROBABILITY: Tensor(
            tensors.PROBABILITY, "FP32", [n], np.array([v.probability for v in verdicts], np.float32)
        ),
        tensors.LABEL: Tensor(tensors.LABEL, "BYTES", [n], [v.label.encode() for v in verdicts]),
        tensors.THRESHOLD: Tensor(tensors.THRESHOLD, "FP64", [n], np.array([v.threshold for v in verdicts])),
    }
    if subtype_labels:
        rows = [
            [v.subtype[label] for label in subtype_labels] if v.subtype else [tensors.NO_SUBTYPE] * len(subtype_labels)
            for v in verdicts
        ]
        outputs[tensors.SUBTYPES] = Tensor(
            tensors.SUBTYPES, "FP32", [n, len(subtype_labels)], np.array(rows, np.float32)
        )
    return outputs
