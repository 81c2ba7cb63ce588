"""`python -m serving`: run the gateway with uvicorn on GATEWAY_HOST:GATEWAY_PORT."""

import uvicorn

from serving.config import Settings
from serving.main import create_app

settings = Settings()
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
