#!/usr/bin/env sh
# Register the deployments of infra/prefect.yaml with the server (idempotent: run it after
# every upgrade). Creates the two work pools when missing.
set -eu
: "${PREFECT_API_URL:?set PREFECT_API_URL to the Prefect server, e.g. http://localhost:4200/api}"
cd "$(dirname "$0")/../.."
for pool in "${ANGIOKG_CPU_POOL:-angiokg-cpu}" "${ANGIOKG_GPU_POOL:-angiokg-gpu}"; do
  prefect work-pool inspect "$pool" >/dev/null 2>&1 || prefect work-pool create "$pool" --type process
done
exec prefect --no-prompt deploy --all --prefect-file infra/prefect.yaml
