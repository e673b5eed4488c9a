#!/usr/bin/env sh
# Register the deployments of infra/prefect.yaml with the server (idempotent: run it after
# every upgrade). Creates the two work pools when missing. ANGIOKG_TIMEZONE (an IANA name such
# as Europe/Berlin), when set, replaces the nightly schedule's time zone (Asia/Shanghai).
set -eu
: "${PREFECT_API_URL:?set PREFECT_API_URL to the Prefect server, e.g. http://localhost:4200/api}"
cd "$(dirname "$0")/../.."
for pool in "${ANGIOKG_CPU_POOL:-angiokg-cpu}" "${ANGIOKG_GPU_POOL:-angiokg-gpu}"; do
  prefect work-pool inspect "$pool" >/dev/null 2>&1 || prefect work-pool create "$pool" --type process
done
prefect --no-prompt deploy --all --prefect-file infra/prefect.yaml
if [ -n "${ANGIOKG_TIMEZONE:-}" ]; then
  # Options apply to one deployment at a time: redeploy the nightly one in that time zone.
  prefect --no-prompt deploy --prefect-file infra/prefect.yaml --name nightly \
    --timezone "$ANGIOKG_TIMEZONE"
fi
