# recstore daemon image: slim Python, non-root, no secrets baked in.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY recstore ./recstore
COPY conf ./conf
COPY entrypoint.sh ./
RUN pip install . && pip install "moto[server]>=5.0" \
    && useradd --system --uid 10001 --home-dir /app recstore \
    && mkdir -p /state && chown recstore /state
USER recstore
EXPOSE 8080
# The probe asks the address from the daemon's own configuration (http.host/http.port);
# through the entrypoint, so a configuration fetched from S3 is found where the daemon put it.
# Give the container a stop timeout above daemon.gracePeriod + 10 s (the default of 10 s would
# kill a draining daemon): docker run --stop-timeout 45, compose stop_grace_period, Kubernetes
# terminationGracePeriodSeconds.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/app/entrypoint.sh", "healthcheck"]
ENTRYPOINT ["/app/entrypoint.sh"]
