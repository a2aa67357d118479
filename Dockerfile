# capsem-proxy container image (docs/deploy.md):
#   docker build -t capsem-proxy .
#   docker run -p 8000:8000 -v ./proxy.yaml:/etc/capsem-proxy/proxy.yaml:ro \
#     -e CAPSEM_PROXY_CONFIG=/etc/capsem-proxy/proxy.yaml capsem-proxy
# Every config key is also an env var (CAPSEM_PROXY_<SECTION>__<KEY>); the env wins over the file.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: the package and its dependencies go into a venv, the only thing the final image takes.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/capsem-proxy
COPY pyproject.toml README.md ./
COPY capsem_proxy ./capsem_proxy
RUN /opt/capsem-proxy/bin/pip install --no-cache-dir '.[all]' \
    && /opt/capsem-proxy/bin/capsem-proxy --version

# Final stage: the same slim base, the venv, a non-root user; no compiler, no pip cache, no sources.
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/capsem-proxy/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CAPSEM_PROXY_SERVER__HOST=0.0.0.0 \
    CAPSEM_PROXY_SERVER__PORT=8000 \
    CAPSEM_PROXY_SERVER__DATA_DIR=/var/lib/capsem-proxy
RUN groupadd --system --gid 10001 capsem \
    && useradd --system --uid 10001 --gid capsem --home-dir /var/lib/capsem-proxy --no-create-home \
       --shell /usr/sbin/nologin capsem \
    && mkdir -p /var/lib/capsem-proxy /etc/capsem-proxy \
    && chown capsem:capsem /var/lib/capsem-proxy
COPY --from=build /opt/capsem-proxy /opt/capsem-proxy
USER 10001:10001
WORKDIR /var/lib/capsem-proxy
EXPOSE 8000
# The tenant secret, the exported audit head and (with SQLite) the audit store live here.
VOLUME ["/var/lib/capsem-proxy"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-m", "capsem_proxy.probe", "/healthz"]
# SIGTERM drains: /readyz answers 503, open streams get server.drain_seconds to finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["capsem-proxy"]
CMD ["run"]
