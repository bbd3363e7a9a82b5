# syntax=docker/dockerfile:1
# Build:    docker build -t caseclock .
# Migrate:  docker run --rm -e CASECLOCK_DATABASE_URL=postgresql+asyncpg://caseclock:secret@db/caseclock \
#             caseclock caseclock migrate
# Run:      docker run -d -p 8000:8000 -e CASECLOCK_DATABASE_URL=postgresql+asyncpg://caseclock:secret@db/caseclock \
#             caseclock
# On PostgreSQL, `caseclock migrate` runs before each new version starts (the service refuses a
# schema it does not expect). Without CASECLOCK_DATABASE_URL the image keeps a SQLite file in
# the /data volume and migrates it at start.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The locked dependencies first, each checked against its hash: this layer is rebuilt only
# when the lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
# Then caseclock itself, as a package: its migrations ship inside it.
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-deps . && pip check

FROM python:3.11-slim-bookworm
# A numeric user, so that an orchestrator can see it is not root without reading /etc/passwd.
RUN groupadd --system --gid 10001 caseclock \
    && useradd --system --no-log-init --no-create-home --uid 10001 --gid 10001 caseclock \
    && mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CASECLOCK_HOST=0.0.0.0 \
    CASECLOCK_PORT=8000 \
    CASECLOCK_DATABASE_URL=sqlite+aiosqlite:////data/caseclock.db
WORKDIR /data
VOLUME /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('CASECLOCK_PORT', '8000')}/healthz\", timeout=2)"]
CMD ["caseclock", "serve"]
