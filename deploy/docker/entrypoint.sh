#!/bin/sh
# Entrypoint of the AURA image (Dockerfile). Prepares the Prometheus multiprocess directory, then
# replaces itself with the command, so that the command (daphne, celery) receives SIGTERM directly.
set -eu

# prometheus_client in multiprocess mode: every process of this container writes its metrics as
# files in PROMETHEUS_MULTIPROC_DIR and /metrics sums them. Files left by processes of an earlier
# run would be summed in too (counters that never reset, gauges of dead processes), so the
# directory is emptied before anything starts. docker-compose.prod.yml mounts a tmpfs there.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
fi

exec "$@"
