"""Python client for the pneumonia X-ray gateway: `Client` / `AsyncClient` for integrations, and the batch-scoring
CLI `python -m client`. Needs httpx, pydantic, typer and tqdm; never TensorFlow.

    from client import Client

    with Client("http://gateway:8080", api_key="...") as client:
        prediction = client.predict("chest.jpeg")
        for outcome in client.predict_many(paths, concurrency=8):
            ...
"""

from client._async_client import AsyncClient
from client._client import Client
from client._exceptions import (
    APIError,
    BadRequest,
    ClientError,
    Forbidden,
    GatewayTimeout,
    InvalidImage,
    NotFound,
    NotSupported,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Timeout,
    TransportError,
    Unauthorized,
    UnknownOperatingPoint,
)
from client._images import CONTENT_TYPES, ImageInput
from client._models import Outcome, Prediction
from client._retry import NO_RETRY, RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "CONTENT_TYPES",
    "NO_RETRY",
    "APIError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "ClientError",
    "Forbidden",
    "GatewayTimeout",
    "ImageInput",
    "InvalidImage",
    "NotFound",
    "NotSupported",
    "Outcome",
    "PayloadTooLarge",
    "Prediction",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "UnknownOperatingPoint",
    "__version__",
]
