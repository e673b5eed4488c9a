#!/usr/bin/env sh
# A process worker for the CPU pool (ingest, extraction, export, the nightly job).
# Creates the pool on first start. Needs PREFECT_API_URL (e.g. http://prefect-server:4200/api).
# ANGIOKG_WORKER_HEALTH_PORT, when set, serves GET /health on that port (compose's healthcheck).
set -eu
: "${PREFECT_API_URL:?set PREFECT_API_URL to the Prefect server, e.g. http://localhost:4200/api}"
. "$(dirname "$0")/worker-env.sh"
# shellcheck disable=SC2086  # $health is empty or one flag
exec prefect worker start --pool "${ANGIOKG_CPU_POOL:-angiokg-cpu}" --type process \
  --name "cpu-$(hostname)" --limit "${ANGIOKG_CPU_WORKER_LIMIT:-2}" $health
