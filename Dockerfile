# Two images from one file (docs/deployment.md):
#   gateway (default, last stage): docker build -t pneumonia-gateway .
#   client (batch scoring CLI):   docker build --target client -t pneumonia-client .
# The model is NOT baked into the gateway: TF Serving owns it. The same image runs the embedded backend when
# GATEWAY_SERVING_ADDRESS is unset and a model repository is mounted at GATEWAY_MODEL_DIR. Both images run as
# uid 10001 on a read-only root filesystem; only /tmp (a tmpfs in compose and Kubernetes) is written.
ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS gateway-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements/gateway.hashes.txt requirements/no-deps.hashes.txt requirements/
# The direct runtime dependencies of radiograph/ and serving/ (requirements/gateway.in; tests/deploy checks it against
# their imports) and everything they need, at requirements/lock.txt's versions, each download checked against its
# hash (requirements/gateway.hashes.txt, made by scripts/lock). no-deps adds openvino (the embedded backend's CPU
# runtime, ~180 MB installed, without its telemetry package), tritonclient (the Open Inference Protocol's gRPC stubs)
# and tensorflow-serving-api.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes -r requirements/gateway.hashes.txt \
    && /opt/venv/bin/pip install --require-hashes --no-deps -r requirements/no-deps.hashes.txt

FROM ${PYTHON_IMAGE} AS client-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements/client.hashes.txt requirements/
# The direct dependencies of client/ (requirements/client.in), pinned and hash-checked the same way.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes -r requirements/client.hashes.txt

FROM ${PYTHON_IMAGE} AS client
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp TMPDIR=/tmp
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=client-deps /opt/venv /opt/venv
COPY client/ client/
RUN python -m compileall -q client
USER 10001:10001
ENTRYPOINT ["python", "-m", "client"]
CMD ["--help"]

FROM ${PYTHON_IMAGE} AS gateway
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    TF_CPP_MIN_LOG_LEVEL=2 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_MODEL_DIR=/models/pneumonia
# /var/spool/gateway: the DICOMweb spool's mount point (docker-compose). A new named volume mounted there takes
# this folder's owner, so uid 10001 can write it; Kubernetes gives its volume the pod's fsGroup instead.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && install -d -o 10001 -g 10001 -m 0750 /var/spool/gateway
WORKDIR /app
COPY --from=gateway-deps /opt/venv /opt/venv
COPY radiograph/ radiograph/
COPY serving/ serving/
RUN python -m compileall -q radiograph serving
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GATEWAY_PORT', '8080') + '/healthz', timeout=2)"]
CMD ["python", "-m", "serving"]
