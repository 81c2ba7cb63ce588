"""`python -m serving`: run the gateway with uvicorn on GATEWAY_HOST:GATEWAY_PORT."""

import uvicorn

from serving.config import Settings
from serving.main import create_app
from serving.observability.logs import configure_logging

settings = Settings()
configure_logging(settings.log_level)  # before anything can log: uvicorn's start-up, the first request's errors
# SIGTERM: uvicorn stops accepting, lets in-flight requests finish (up to the grace period), then exits.
# Its access log is off: the gateway writes its own, with the request ID and without raw paths.
uvicorn.run(
    create_app(settings),
    host=settings.host,
    port=settings.port,
    log_config=None,
    access_log=False,
    timeout_graceful_shutdown=settings.shutdown_grace_s,  # type: ignore[arg-type]  # awaited by asyncio: a float works
)
