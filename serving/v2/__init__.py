"""The Open Inference Protocol (KServe / Triton "v2"), on the same data plane as `/v1` (`serving.scoring`).

    tensors.py       the protocol's inputs, outputs and model description, whatever the transport
    dataplane.py     metadata, readiness and inference over `Scorer`: validation, verdicts → output tensors
    rest.py          JSON and the binary tensor extension (`Inference-Header-Content-Length`) ↔ tensors
    routes.py        the REST routes under /v2
    grpc_service.py  inference.GRPCInferenceService on GATEWAY_GRPC_PORT (tritonclient's generated stubs)
"""
