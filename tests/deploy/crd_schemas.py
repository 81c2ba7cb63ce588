"""Schemas of the custom resources the manifests use (Gateway API, Prometheus Operator), for validating them
offline as kubernetes-validate does the built-in kinds. Each file in crd_schemas/ is the served `v1` openAPIV3Schema
of an upstream CRD with its descriptions removed:

    python tests/deploy/crd_schemas.py CRD.yaml > tests/deploy/crd_schemas/<group>_<kind>.json

from gateway-api v1.6.1 (config/crd/standard/gateway.networking.k8s.io_{gateways,httproutes}.yaml) and
prometheus-operator v0.93.0 (example/prometheus-operator-crd/monitoring.coreos.com_{podmonitors,prometheusrules}.yaml).
Validation is strict as `kubectl apply --validate=strict` is (an unknown field is an error); the CRDs' CEL rules
(x-kubernetes-validations) are not evaluated."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

import jsonschema
import yaml

FOLDER = Path(__file__).parent / "crd_schemas"


def trimmed(crd: dict) -> dict:
    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "description"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    names = crd["spec"]["names"]
    return {"group": crd["spec"]["group"], "kind": names["kind"], "schema": strip(version["schema"]["openAPIV3Schema"])}


def strict(node: object) -> object:
    """JSON Schema from a structural schema: objects with known properties accept no other field."""
    if isinstance(node, list):
        return [strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: strict(v) for k, v in node.items()}
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
    return node


@cache
def schemas() -> dict[tuple[str, str], dict]:
    found = {}
    for path in sorted(FOLDER.glob("*.json")):
        entry = json.loads(path.read_text(encoding="utf-8"))
        found[(f"{entry['group']}/v1", entry["kind"])] = strict(entry["schema"])
    return found


def custom_resource_errors(resource: dict) -> list[str] | None:
    """Validation errors of a custom resource, or None when the kind is not a custom one known here."""
    schema = schemas().get((resource["apiVersion"], resource["kind"]))
    if schema is None:
        return None
    where = f"{resource['kind']}/{resource['metadata']['name']}"
    return [f"{where} {'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in jsonschema.Draft7Validator(schema).iter_errors(resource)]


if __name__ == "__main__":
    print(json.dumps(trimmed(yaml.safe_load(Path(sys.argv[1]).read_text(encoding="utf-8"))), separators=(",", ":")))
