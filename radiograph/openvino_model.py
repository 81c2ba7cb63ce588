"""OpenVINO runs the SavedModel's `serving_default` on the CPU, converted from the SavedModel itself.

- Conversion: the signature with its variables folded into constants (`LoadedModel.frozen`; OpenVINO cannot read
  a SavedModel's resource variables, `VarHandleOp`), converted whole by OpenVINO's TensorFlow frontend. The
  histogram equalisation, the test-time transforms and every ensemble member are the SavedModel's own graph,
  nothing is re-written by hand. OpenVINO has no rule for `DenseBincount` (the histogram): `_dense_bincount` is
  one, a scatter-add of ones, exact on integer counts.
- Cache: the converted model (OpenVINO IR, float32 weights) in `cache_dir/<key>/`, the key a digest of the
  SavedModel's graph and variables, the OpenVINO version and `CONVERSION_REVISION`. An entry is written only
  after its float32 outputs matched TensorFlow's on the probe.
- Checked at every load: the model compiled at the served precision against TensorFlow on the probe, within
  `PROBE_TOLERANCE`.
- `explain` is not converted: it stays on TensorFlow (`LoadedModel`).

`import openvino` reports usage to Google Analytics when its `openvino-telemetry` package is installed; it is
not (requirements/no-deps.txt installs openvino without it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from radiograph.contract import IMAGE_INPUT, PROBABILITY_OUTPUT, SERVING_SIGNATURE, ModelMetadata
from radiograph.savedmodel import LoadedModel

log = logging.getLogger(__name__)

CONVERSION_REVISION = 1
"""Raise it when the conversion changes: cached models of older revisions are then converted again."""
OPENVINO_PRECISION = {"float32": "f32", "bfloat16": "bf16"}
PROBE_TOLERANCE = {"float32": 1e-4, "bfloat16": 0.05}
"""Largest |ΔP| on the probe against TensorFlow float32. float32 proves the conversion (measured ~1e-7);
bfloat16 rounds every layer's inputs (validation: see the model's precision points)."""
MODEL_FILE = "model.xml"


class ConversionFailed(RuntimeError):
    """OpenVINO cannot convert the SavedModel, or the converted model does not give its outputs."""


def available() -> bool:
    """OpenVINO is installed and has its CPU device."""
    try:
        import openvino as ov
    except ImportError:
        return False
    return "CPU" in ov.Core().available_devices


def native_bfloat16() -> bool:
    """The CPU computes bfloat16 itself (AMX or AVX512-BF16), as OpenVINO reports it."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def model_key(path: Path) -> str:
    """A digest of what the conversion reads (graph, variables) and of the converter; `assets.extra/` is left out."""
    import openvino as ov

    digest = hashlib.sha256(f"openvino {ov.get_version()} revision {CONVERSION_REVISION}".encode())
    for file in [path / "saved_model.pb", *sorted((path / "variables").iterdir())]:
        with file.open("rb") as handle:
            digest.update(file.name.encode() + hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:32]


def probe_images(metadata: ModelMetadata, n: int = 4) -> np.ndarray:
    """Fixed uint8 [n, H, W, 1] pictures: coarse blocks of random grey levels under fine noise, so that each has
    its own histogram and the model answers each differently (pure noise saturates it)."""
    rng = np.random.default_rng(20261206)
    height, width = metadata.input_height, metadata.input_width
    blocks = rng.uniform(0, 255, (n, 8, 8))
    coarse = np.kron(blocks, np.ones((-(-height // 8), -(-width // 8))))[:, :height, :width]
    pixels = coarse + rng.normal(0, 24, (n, height, width))
    return np.clip(pixels, 0, 255).astype(np.uint8)[..., None]


def _dense_bincount(node: Any) -> list[Any]:
    """OpenVINO rule for TensorFlow's `DenseBincount` on 1-D values without weights (what `tf.math.bincount`
    emits for counts): `size` zeros, then one added at each value. TensorFlow ignores values outside [0, size);
    the exported graph has none (grey level + 256 × image index, size 256 × images), and the check against the
    SavedModel at load would see a difference."""
    import openvino.opset15 as ops

    values, size, weights = node.get_input(0), node.get_input(1), node.get_input(2)
    if node.get_attribute("binary_output") or values.get_partial_shape().rank.get_length() != 1 or (
        weights.get_partial_shape().is_static and weights.get_partial_shape().to_shape() != [0]
    ):
        raise ConversionFailed("DenseBincount is converted only for 1-D counts without weights")
    zeros = ops.broadcast(ops.constant(np.int32(0)), ops.reshape(size, ops.constant(np.array([1])), False))
    ones = ops.broadcast(ops.constant(np.int32(1)), ops.shape_of(values))
    counts = ops.scatter_elements_update(zeros, values, ones, ops.constant(np.int64(0)), reduction="sum")
    return [counts.output(0)]


def convert(reference: LoadedModel) -> Any:
    """The reference's `serving_default` as an `openvino.Model` with the contract's input and output names."""
    from openvino.frontend import FrontEndManager
    from openvino.frontend.tensorflow import ConversionExtension

    graph, image, outputs = reference.frozen(SERVING_SIGNATURE)
    frontend = FrontEndManager().load_by_framework("tf")
    frontend.add_extension(ConversionExtension("DenseBincount", _dense_bincount))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "frozen.pb").write_bytes(graph)
        model = frontend.convert(frontend.load(str(Path(folder) / "frozen.pb")))
    model.input(image).get_tensor().set_names({IMAGE_INPUT})
    for name, tensor in outputs.items():
        model.output(tensor).get_tensor().set_names({name})
    return model


def _compile(model: Any, precision: str) -> Any:
    """Compiled for throughput: OpenVINO's streams (on 2 cores: 2 streams of 1 thread) each run a call of their
    own, without a barrier between cores after every layer, which a busy machine's scheduler punishes (measured:
    4× slower than TensorFlow at one 2-thread stream under a load average of 9). Threads are not pinned to
    cores: the gateway's decoding shares them."""
    import openvino as ov

    config = {
        "INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision], "PERFORMANCE_HINT": "THROUGHPUT",
        "ENABLE_CPU_PINNING": False,
    }
    return ov.Core().compile_model(model, "CPU", config)


class OpenVinoModel:
    """The reference SavedModel's `serving_default` compiled by OpenVINO at `precision` (`float32`, `bfloat16`).
    Same interface as `LoadedModel` for scoring: `version`, `metadata`, `outputs`, `predict`."""

    runtime = "openvino"

    def __init__(self, reference: LoadedModel, precision: str, cache_dir: Path | None) -> None:
        self.reference, self.precision = reference, precision
        self.version, self.metadata, self.path = reference.version, reference.metadata, reference.path
        self._names = reference.signatures[SERVING_SIGNATURE].outputs
        self._compiled = _compile(self._converted(cache_dir), precision)
        self.parallel_calls = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        """Calls that run at once, one per OpenVINO stream; more wait for a free one."""
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self.parallel_calls):
            self._requests.put(self._compiled.create_infer_request())
        self.probe_difference = self._check(precision)

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of `serving_default` (probability, subtype_probabilities), float32, for uint8 [n, H, W, 1].
        Thread-safe: up to `parallel_calls` run at once."""
        request = self._requests.get()
        try:
            result = request.infer({IMAGE_INPUT: np.ascontiguousarray(images, np.uint8)})
        finally:
            self._requests.put(request)
        return {name: np.asarray(result[name], np.float32) for name in self._names}

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.outputs(images)[PROBABILITY_OUTPUT]

    def warm_up(self, batch_sizes: Iterable[int]) -> None:
        """One call of each size on every stream: each allocates its buffers for the largest once, at start."""
        requests = [self._requests.get() for _ in range(self.parallel_calls)]
        try:
            for n in batch_sizes:
                images = np.zeros((n, self.metadata.input_height, self.metadata.input_width, 1), np.uint8)
                for request in requests:
                    request.infer({IMAGE_INPUT: images})
        finally:
            for request in requests:
                self._requests.put(request)

    def _check(self, precision: str, compiled: Any = None) -> float:
        """Largest |Δ| of any output on the probe against TensorFlow; the subtype probabilities are compared too,
        as P is near 1 on every probe picture."""
        images = probe_images(self.metadata)
        expected = self.reference.outputs(images)
        got = self.outputs(images) if compiled is None else compiled({IMAGE_INPUT: images})
        difference = max(float(np.max(np.abs(np.asarray(got[name]) - expected[name]))) for name in self._names)
        if not difference <= PROBE_TOLERANCE[precision]:
            raise ConversionFailed(
                f"{precision} differs from the SavedModel by {difference:.2g} on the probe "
                f"(tolerance {PROBE_TOLERANCE[precision]:g})"
            )
        return difference

    def _converted(self, cache_dir: Path | None) -> Any:
        import openvino as ov

        entry = cache_dir / model_key(self.path) if cache_dir else None
        if entry is not None and (entry / MODEL_FILE).is_file():
            log.info("OpenVINO model of version %d read from the cache %s", self.version, entry)
            return ov.Core().read_model(entry / MODEL_FILE)
        log.info("converting model version %d to OpenVINO", self.version)
        try:
            model = convert(self.reference)
        except Exception as exc:  # the frontend's errors have no common type of their own
            raise ConversionFailed(f"conversion failed: {exc}") from exc
        self._check("float32", _compile(model, "float32"))  # only a conversion that matches is cached
        if entry is not None:
            _store(model, entry)
        return model


def _store(model: Any, entry: Path) -> None:
    """Write the IR beside `entry` and rename it into place, so that a reader never sees half an entry. A cache
    that cannot be written is skipped: the model is converted again at the next start."""
    import openvino as ov

    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    except OSError as exc:
        log.warning("OpenVINO model not cached in %s: %s", entry.parent, exc)
        return
    try:
        ov.save_model(model, partial / MODEL_FILE, compress_to_fp16=False)
        os.replace(partial, entry)
    except OSError as exc:  # full disk, or another process stored the same entry first
        log.warning("OpenVINO model not cached in %s: %s", entry.parent, exc)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
