"""Builds the gateway app: settings, backend, metrics, routes. Nothing happens at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry

from serving import errors, web
from serving.api import security
from serving.api.limits import ConcurrencyLimit, InFlight
from serving.api.middleware import BodyLimit, RequestContext
from serving.api.routes import batch, drift, explain, health, metrics, predict
from serving.config import Settings
from serving.dicomweb import routes as dicomweb_routes
from serving.dicomweb.service import DicomwebService
from serving.inference.base import InferenceBackend
from serving.inference.factory import make_backend
from serving.observability.audit import AuditLog
from serving.observability.drift import DriftMonitor
from serving.observability.logs import configure_logging
from serving.observability.metrics import GatewayMetrics
from serving.scoring import Scorer
from serving.v2 import routes as v2_routes
from serving.v2.dataplane import OpenInference

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Scores pediatric chest radiographs for pneumonia. A triage aid for qualified readers: "
    "**not a diagnostic device**."
)


def create_app(
    settings: Settings | None = None,
    backend: InferenceBackend | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    settings = settings or Settings()
    gateway_metrics = GatewayMetrics(registry or CollectorRegistry())
    drift_monitor = DriftMonitor(
        settings.drift_reference_source(), settings.drift_window, gateway_metrics.registry,
        baseline_dir=settings.drift_baseline_dir, baseline_images=settings.drift_baseline_images,
        baseline_inputs=settings.drift_baseline_inputs,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        app.state.api_keys.log_mode()
        app.state.audit.open()
        chosen = backend or make_backend(settings, gateway_metrics)
        await chosen.start()
        app.state.backend = chosen
        app.state.scorer = Scorer(chosen, settings, gateway_metrics, drift_monitor)
        await app.state.scorer.check_settings()  # a bad setting stops the start: uvicorn exits non-zero
        await app.state.dicomweb.start(app.state.scorer, app.state.audit)
        app.state.v2 = OpenInference(app.state.scorer, settings, app.version)
        grpc_server = None
        if settings.grpc_port is not None:
            from serving.v2 import grpc_service  # the gRPC stubs are imported only where the port is on

            state = app.state
            grpc_server = await grpc_service.start(
                settings, state.v2, state.api_keys, state.in_flight, gateway_metrics, state.audit
            )
        log.info("gateway ready: backend=%s model=%s", chosen.name, settings.model_name)
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(settings.shutdown_grace_s)
            await app.state.dicomweb.close()
            await chosen.close()
            app.state.audit.close()

    app = FastAPI(
        title="Pneumonia X-ray gateway",
        description=DESCRIPTION,
        version="1",
        lifespan=lifespan,
        dependencies=[Depends(security.authenticate)],  # every route but security.OPEN_ROUTES needs an API key
    )
    app.state.settings = settings
    app.state.metrics = gateway_metrics
    app.state.drift = drift_monitor
    app.state.api_keys = security.ApiKeys.from_settings(settings)
    app.state.in_flight = InFlight(settings.max_in_flight)  # REST and gRPC share it
    app.state.audit = AuditLog(settings.audit_log_file)
    app.state.dicomweb = DicomwebService(settings, gateway_metrics.registry)
    errors.install_handlers(app)
    routers = (predict.router, batch.router, explain.router, health.router, metrics.router, drift.router, web.router)
    for router in (*routers, dicomweb_routes.router, v2_routes.router):
        app.include_router(router)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, path_limits={"/dicomweb/": settings.dicomweb_max_body_bytes}
    )
    app.add_middleware(
        ConcurrencyLimit,
        in_flight=app.state.in_flight,
        retry_after_s=settings.shed_retry_after_s,
        metrics=gateway_metrics,
        drain_bytes=settings.max_body_bytes,
    )
    app.add_middleware(RequestContext, metrics=gateway_metrics)
    return app
