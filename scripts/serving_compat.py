"""Whether the shipped model versions load and answer alike in the TensorFlow that the pinned TF Serving image is
built on (`scripts/check-serving-compat` runs it in a virtualenv with that TensorFlow, and in .venv's, and compares).

    python scripts/serving_compat.py run MODEL_ROOT VERSION...   one JSON line: TensorFlow version, and per model
                                                                version its ops, missing ops and probabilities
    python scripts/serving_compat.py ops SAVED_MODEL_DIR         the ops its graph uses (any TensorFlow)
    python scripts/serving_compat.py record SERVING_RUN EXPORT_RUN  the two runs' JSON lines compared, as written to
                                                                deploy/tfserving/serving-compat.json

Needs only numpy and TensorFlow, so that it runs in a bare virtualenv."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def graph_ops(saved_model_dir: Path) -> list[str]:
    """Every op of every graph and function body in saved_model.pb, function calls by name excluded."""
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    model.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    functions: set[str] = set()
    for graph in model.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            functions.add(function.signature.name)
            ops.update(node.op for node in function.node_def)
    return sorted(ops - functions)


def probe_images(size: int = 224) -> np.ndarray:
    """Four fixed uint8 pictures (dark, bright, a gradient, seeded noise): inputs that any TensorFlow builds alike."""
    gradient = np.tile(np.linspace(0, 255, size, dtype=np.float32), (size, 1))
    noise = np.random.default_rng(7).integers(0, 256, (size, size))
    pictures = [np.full((size, size), 20), np.full((size, size), 230), gradient, noise]
    return np.stack(pictures).astype(np.uint8)[..., None]


def run(model_root: Path, versions: list[str]) -> dict:
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    report: dict = {"tensorflow": tf.__version__, "models": {}}
    for version in versions:
        path = model_root / version
        ops = graph_ops(path)
        missing = [op for op in ops if op_def_registry.get(op) is None]
        entry: dict = {"ops": ops, "missing_ops": missing}
        if not missing:
            model = tf.saved_model.load(str(path))
            scored = model.signatures["serving_default"](image=tf.constant(probe_images()))
            entry["probability"] = [round(float(p), 6) for p in scored["probability"].numpy()]
            entry["signatures"] = sorted(model.signatures.keys())
        report["models"][version] = entry
    return report


def record(serving: dict, export: dict) -> dict:
    """What the Serving TensorFlow did with each version, beside the export TensorFlow's probabilities."""
    models = {}
    for version, entry in serving["models"].items():
        exported = export["models"][version]
        assert entry["ops"] == exported["ops"], f"version {version}: the two runs read different graphs"
        difference = None
        if not entry["missing_ops"] and "probability" in entry:
            pairs = zip(entry["probability"], exported["probability"], strict=True)
            difference = max(abs(a - b) for a, b in pairs)
        models[version] = {"ops": entry["ops"], "missing_ops": entry["missing_ops"],
                           "signatures": entry.get("signatures", []),
                           "probability_max_abs_difference": difference}
    return {"serving_tensorflow": serving["tensorflow"], "export_tensorflow": export["tensorflow"], "models": models}


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "ops":
        print("\n".join(graph_ops(Path(args[0]))))
    elif command == "run":
        print(json.dumps(run(Path(args[0]), args[1:]), sort_keys=True))
    elif command == "record":
        print(json.dumps(record(json.loads(args[0]), json.loads(args[1])), indent=2, sort_keys=True))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
