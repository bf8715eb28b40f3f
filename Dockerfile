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
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthcheck')"
ENTRYPOINT ["/app/entrypoint.sh"]
