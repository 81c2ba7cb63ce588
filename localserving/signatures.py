"""Running a Predict request on a loaded version, with TF Serving's checks, and replaying the
version's warm-up records (`assets.extra/tf_serving_warmup_requests`) at load time as Serving does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from localserving.servable import Servable, ServableError
from radiograph.contract import SERVING_SIGNATURE, WARMUP_FILE


def invalid(message: str) -> ServableError:
    return ServableError(grpc.StatusCode.INVALID_ARGUMENT, message)


def run_signature(servable: Servable, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """Predict on one servable: inputs checked against the signature, outputs filtered like Serving."""
    name = request.model_spec.signature_name or SERVING_SIGNATURE
    if name not in servable.signature_defs:
        raise ServableError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
    expected = servable.model.signatures[name].inputs
    if set(request.inputs) != set(expected):
        raise invalid(f"inputs {sorted(request.inputs)} do not match signature {name!r} inputs {sorted(expected)}")
    inputs = {}
    for key, proto in request.inputs.items():
        try:
            array = tf.make_ndarray(proto)
        except (ValueError, TypeError) as exc:
            raise invalid(f"input {key!r}: tensor parsing error: {exc}") from None
        spec = expected[key]
        if array.dtype != spec.dtype.as_numpy_dtype or not spec.shape.is_compatible_with(array.shape):
            raise invalid(f"input {key!r} is {array.dtype} {list(array.shape)}, the signature expects {spec}")
        inputs[key] = array
    try:
        outputs = servable.model.call(name, inputs)
    except tf.errors.InvalidArgumentError as exc:
        raise invalid(exc.message) from None
    wanted = list(request.output_filter) or sorted(outputs)
    if unknown := sorted(set(wanted) - set(outputs)):
        raise invalid(f"output_filter names {unknown}, not outputs of signature {name!r}")
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = name
    for key in wanted:
        response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
    return response


def warmup_requests(version_dir: Path) -> Iterator[predict_pb2.PredictRequest]:
    """The Predict requests among a version's warm-up records (none when it has no warm-up file)."""
    path = version_dir / WARMUP_FILE
    if not path.is_file():
        return
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") == "predict_log":
            yield log.predict_log.request


def replay_warmup(servable: Servable) -> int:
    """Runs the version's warm-up Predict records so its first real request is not a cold one; returns how many."""
    replayed = 0
    for request in warmup_requests(servable.model.path):
        run_signature(servable, request)
        replayed += 1
    return replayed
