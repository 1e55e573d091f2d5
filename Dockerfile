# framecast: one image for `serve`, `worker` and `migrate` (docs/operations.md).
#   docker build -t framecast .
#   docker run -p 8000:8000 -v framecast-data:/data framecast            # the embedded default: SQLite + files

# The web app's front-end, bundled by esbuild from the locked npm dependencies.
FROM node:20-bookworm-slim AS frontend
WORKDIR /build/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
# Writes ../src/framecast/web/static/dist, i.e. /build/src/framecast/web/static/dist.
RUN npm run --silent build -- --quiet

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app/src \
    FRAMECAST_HOST=0.0.0.0 \
    FRAMECAST_DATA_DIR=/data
WORKDIR /app
# The runtime dependencies at the versions the tests ran with, every file checked against its hash. ffmpeg comes
# with them (imageio-ffmpeg).
COPY requirements.runtime.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check --require-hashes --no-deps -r requirements.runtime.lock
COPY src/ src/
COPY --from=frontend /build/src/framecast/web/static/dist/ src/framecast/web/static/dist/
RUN useradd --system --uid 10001 --home-dir /data framecast && mkdir -p /data && chown framecast /data
USER framecast
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
ENTRYPOINT ["python", "-m", "framecast"]
CMD ["serve"]
