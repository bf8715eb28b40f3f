# recstore images, built from the lock files in requirements/ (hash-checked, so two builds a
# week apart run the same code).
#
#   docker build -t recstore .                  the daemon: slim, non-root, no compilers, no dev stack
#   docker build --target dev -t recstore-dev . the same plus the dev stack (moto's server), for
#                                                docker-compose.yml and demos; never for production
#
# Refresh the locks with `make lock` (docs/development.md).

# --- build: a virtual environment with the locked dependencies and recstore itself ----------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/recstore
COPY requirements/daemon.txt requirements/daemon.txt
RUN /opt/recstore/bin/pip install --require-hashes --only-binary=:all: -r requirements/daemon.txt
COPY pyproject.toml README.md ./
COPY recstore ./recstore
RUN /opt/recstore/bin/pip install --no-deps --no-compile . \
    && /opt/recstore/bin/python -m compileall -q /opt/recstore/lib

# --- daemon: only the venv and the entrypoint on a slim base ---------------------------------
FROM python:3.11-slim AS daemon
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/recstore/bin:$PATH
WORKDIR /app
COPY --from=build /opt/recstore /opt/recstore
COPY conf ./conf
COPY entrypoint.sh ./
RUN useradd --system --uid 10001 --home-dir /app recstore \
    && mkdir -p /state && chown recstore /state
USER 10001
EXPOSE 8080
# The probe asks the address from the daemon's own configuration (http.host/http.port);
# through the entrypoint, so a configuration fetched from S3 is found where the daemon put it.
# Give the container a stop timeout above daemon.gracePeriod + 10 s (the default of 10 s would
# kill a draining daemon): docker run --stop-timeout 45, compose stop_grace_period, Kubernetes
# terminationGracePeriodSeconds.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/app/entrypoint.sh", "healthcheck"]
ENTRYPOINT ["/app/entrypoint.sh"]

# --- dev: the daemon plus the dev stack's dependencies (docker-compose.yml) ------------------
FROM build AS dev-build
COPY requirements/devstack.txt requirements/devstack.txt
RUN /opt/recstore/bin/pip install --require-hashes --only-binary=:all: -r requirements/devstack.txt

FROM daemon AS dev
COPY --from=dev-build /opt/recstore /opt/recstore

# The default target is the daemon: `docker build .` never ships the dev stack.
FROM daemon
