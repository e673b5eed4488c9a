#!/usr/bin/env sh
# Register the deployments of infra/prefect.yaml and the alerting automations of
# infra/automations.yaml with the Prefect server at PREFECT_API_URL (idempotent: run it after
# every upgrade or settings change). Creates the two work pools and the CPU pool's `run-folder`
# queue (one run at a time) when missing.
#
#   PREFECT_API_URL=http://<server>:4200/api sh infra/scripts/deploy.sh [CODE_DIR]
#
# CODE_DIR: where the workers find this code (the deployments' pull step changes into it);
# else $ANGIOKG_CODE_DIR; else the checkout this script is in. The images keep it at /app.
# Settings read here: ANGIOKG_TIMEZONE (the nightly schedule's IANA time zone, Asia/Shanghai
# when empty), ANGIOKG_NIGHTLY_DEADLINE (HH:MM, 06:00 when empty), ANGIOKG_ALERT_BLOCK
# (<block-type>/<block-name> of a notification block; none: alerts only in the event feed),
# ANGIOKG_CPU_POOL / ANGIOKG_GPU_POOL (the pools' names).
set -eu
: "${PREFECT_API_URL:?set PREFECT_API_URL to the Prefect server, e.g. http://localhost:4200/api}"
checkout="$(cd "$(dirname "$0")/../.." && pwd)"
code_dir="${1:-${ANGIOKG_CODE_DIR:-$checkout}}"
case "$code_dir" in
  /*) ;;
  *) echo "deploy.sh: the code directory must be an absolute path, got '$code_dir'" >&2; exit 2 ;;
esac
if [ ! -f "$code_dir/flows/nightly_flow.py" ]; then
  echo "deploy.sh: note: $code_dir/flows/nightly_flow.py is not here; every worker must have" \
       "the code at $code_dir" >&2
fi
export ANGIOKG_CODE_DIR="$code_dir"
export ANGIOKG_TIMEZONE="${ANGIOKG_TIMEZONE:-Asia/Shanghai}"
cd "$checkout"

cpu_pool="${ANGIOKG_CPU_POOL:-angiokg-cpu}"
gpu_pool="${ANGIOKG_GPU_POOL:-angiokg-gpu}"
for pool in "$cpu_pool" "$gpu_pool"; do
  prefect work-pool inspect "$pool" >/dev/null 2>&1 || prefect work-pool create "$pool" --type process
done
# Before `prefect deploy`, which would create the queue without a limit.
prefect work-queue inspect run-folder --pool "$cpu_pool" >/dev/null 2>&1 \
  || prefect work-queue create run-folder --pool "$cpu_pool" --limit 1
prefect work-queue set-concurrency-limit run-folder 1 --pool "$cpu_pool" >/dev/null

prefect --no-prompt deploy --all --prefect-file infra/prefect.yaml
echo "deployments: code at $ANGIOKG_CODE_DIR; nightly schedule in $ANGIOKG_TIMEZONE"

angiokg automations --prefect-file infra/prefect.yaml --file infra/automations.yaml \
  --deadline "${ANGIOKG_NIGHTLY_DEADLINE:-06:00}" --alert-block "${ANGIOKG_ALERT_BLOCK:-}"
