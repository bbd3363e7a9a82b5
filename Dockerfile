# syntax=docker/dockerfile:1
# Build: docker build -t caseclock .
# Run:   docker run -p 8000:8000 -e CASECLOCK_DATABASE_URL=postgresql+asyncpg://... caseclock

FROM python:3.11-slim AS build
WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 caseclock
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# The migrations are read from /app at run time (service/store/migrations.py).
COPY --chown=caseclock alembic.ini ./
COPY --chown=caseclock alembic ./alembic
COPY --chown=caseclock service ./service
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    CASECLOCK_HOST=0.0.0.0 \
    CASECLOCK_PORT=8000 \
    CASECLOCK_DATABASE_URL=sqlite+aiosqlite:////data/caseclock.db
RUN mkdir /data && chown caseclock /data
VOLUME /data
USER caseclock
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('CASECLOCK_PORT', '8000')}/healthz\", timeout=2)"]
CMD ["caseclock", "serve"]
