"""The versions of one model on disk, loaded, and kept in step with the disk by polling."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_pb2, status_pb2

from localserving.servable import Servable, ServableError, load_servable
from localserving.signatures import replay_warmup
from radiograph.contract import model_versions

log = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State


class ModelRepository:
    def __init__(self, root: Path, name: str, labels: dict[str, int] | None = None) -> None:
        self.root, self.name = root, name
        self.labels = dict(labels or {})
        self.servables: dict[int, Servable] = {}
        self.loading: set[int] = set()

    async def refresh(self) -> None:
        """Load versions new on disk, drop versions gone from it. A version that fails to load (e.g.
        still being copied) is tried again on the next refresh."""
        on_disk = set(await asyncio.to_thread(model_versions, self.root))
        for version in set(self.servables) - on_disk:
            log.info("unloading %s version %d", self.name, version)
            del self.servables[version]
        for version in sorted(on_disk - set(self.servables)):
            self.loading.add(version)
            try:
                servable = await asyncio.to_thread(load_servable, self.root, version)
                warmed = await asyncio.to_thread(replay_warmup, servable)
                self.servables[version] = servable
                log.info("loaded %s version %d (%d warm-up requests replayed)", self.name, version, warmed)
            except Exception as exc:  # a half-copied or broken export must not stop the server
                log.warning("could not load %s version %d: %s", self.name, version, exc)
            finally:
                self.loading.discard(version)

    async def watch(self, poll_s: float) -> None:
        while True:
            await asyncio.sleep(poll_s)
            await self.refresh()

    def resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        """The servable a `ModelSpec` asks for: its version, its label's version, or the highest."""
        self.check_name(spec.name)
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            if spec.version_label not in self.labels:
                raise ServableError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {spec.version_label}"
                )
            version = self.labels[spec.version_label]
        elif choice == "version":
            version = spec.version.value
        elif self.servables:
            version = max(self.servables)
        else:
            raise ServableError(grpc.StatusCode.UNAVAILABLE, f"no version of {self.name} is loaded yet")
        if version not in self.servables:
            raise ServableError(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({spec.name}, {version})"
            )
        return self.servables[version]

    def statuses(self, spec: model_pb2.ModelSpec) -> list[get_model_status_pb2.ModelVersionStatus]:
        """GetModelStatus: every version (loaded or loading), or the one `spec.version` names."""
        self.check_name(spec.name)
        states = {version: State.AVAILABLE for version in self.servables}
        states |= {version: State.LOADING for version in self.loading}
        if spec.HasField("version"):
            wanted = spec.version.value
            if wanted not in states:
                raise ServableError(grpc.StatusCode.NOT_FOUND, f"Could not find version {wanted} of model {spec.name}")
            states = {wanted: states[wanted]}
        if not states:
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
        return [
            get_model_status_pb2.ModelVersionStatus(version=version, state=state, status=status_pb2.StatusProto())
            for version, state in sorted(states.items())
        ]

    def check_name(self, name: str) -> None:
        if name != self.name:
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")
