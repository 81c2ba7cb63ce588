"""How an exported model stores its members' weights (fine-tuned top blocks and heads): float32, or
float16 for half their size (a six-member ensemble's 109 MB of members become 54), computed in
float32 either way. The frozen lower backbone stays float32, so the cached activations that
`ensemble` chooses the operating points on are the exported graph's own.

`ensemble --storage float16` rounds the members' weights to float16 before it scores them, and
records the storage in its run; `export` then stores them as float16 through a Keras dtype policy
whose variables are float16 and whose compute dtype is float32 (each layer casts its weights up as it
reads them): the exported model scores exactly as the ensemble was scored."""

from __future__ import annotations

from typing import Any, Literal, cast, get_args

import keras
import numpy as np

from training.runs import Member

WeightStorage = Literal["float32", "float16"]
STORAGES: tuple[str, ...] = get_args(WeightStorage)
STORAGE_KEY = "weight_storage"
"""Key of a run's training.json and of `ModelMetadata.training` that records it (absent: float32)."""


def storage_of(summary: dict[str, Any]) -> WeightStorage:
    return cast(WeightStorage, summary.get(STORAGE_KEY, "float32"))


class Float16Storage(keras.DTypePolicy):
    """Variables float16, computation float32 (the reverse of Keras' `mixed_float16`)."""

    def __init__(self) -> None:
        super().__init__("float16_storage")

    def _parse_name(self, name: str) -> tuple[str, str]:
        return "float32", "float16"  # (compute, variable)


def stored_as(model: keras.Model, storage: WeightStorage) -> keras.Model:
    """`model` itself for float32; else a copy whose layers keep its weights, rounded, as float16."""
    if storage == "float32":
        return model
    policy = Float16Storage()

    def clone(layer: keras.Layer) -> keras.Layer:
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = policy
        return type(layer).from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def member_stored_as(member: Member, storage: WeightStorage) -> Member:
    top, head, subtype_head = (stored_as(model, storage) for model in member.models)
    return Member(top, head, subtype_head, member.pooling)


def round_to_storage(member: Member, storage: WeightStorage) -> None:
    """`member`'s float32 weights, in place, to the values `storage` keeps of them."""
    if storage == "float32":
        return
    for model in member.models:
        model.set_weights([np.asarray(w).astype(np.float16).astype(np.float32) for w in model.get_weights()])
