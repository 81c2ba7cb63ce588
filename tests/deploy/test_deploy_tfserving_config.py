"""deploy/tfserving/models.config, parsed by Serving's own protobuf (ModelServerConfig text format): Serving loads
only the versions it lists, so a list that names no shipped version leaves Serving with nothing to serve and the
gateway never ready."""

from __future__ import annotations

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from devtools.live_servers import REPO
from radiograph.contract import model_versions

MODELS_CONFIG = REPO / "deploy" / "tfserving" / "models.config"


def served_models() -> list[model_server_config_pb2.ModelConfig]:
    config = text_format.Parse(MODELS_CONFIG.read_text(encoding="utf-8"), model_server_config_pb2.ModelServerConfig())
    return list(config.model_config_list.config)


def test_serving_loads_the_version_the_repo_ships() -> None:
    models = served_models()
    assert [m.name for m in models] == ["pneumonia"]
    for model in models:
        shipped = model_versions(REPO / "models" / model.base_path.removeprefix("/models/"))
        listed = set(model.model_version_policy.specific.versions)
        assert listed and listed <= set(shipped), f"models.config lists {sorted(listed)}, the repo ships {shipped}"
        # the labelled `stable` version is the one the embedded backend serves: both paths score alike
        assert model.version_labels["stable"] == max(shipped)
        assert set(model.version_labels.values()) <= listed
