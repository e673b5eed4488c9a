#!/usr/bin/env sh
# A process worker for the GPU pool: training runs here. One run at a time (one GPU).
# Run it on the machine with the GPU; refuses to start when torch cannot see a GPU, unless
# ANGIOKG_ALLOW_CPU_TRAINING=1 (then training runs on the CPU, slowly).
# ANGIOKG_WORKER_HEALTH_PORT, when set, serves GET /health on that port (compose's healthcheck).
set -eu
: "${PREFECT_API_URL:?set PREFECT_API_URL to the Prefect server, e.g. http://prefect-server:4200/api}"
if [ "${ANGIOKG_ALLOW_CPU_TRAINING:-0}" != "1" ]; then
  python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' || {
    echo "no CUDA GPU visible to torch: check the NVIDIA driver and container runtime," \
         "or set ANGIOKG_ALLOW_CPU_TRAINING=1 to train on the CPU" >&2
    exit 1
  }
fi
. "$(dirname "$0")/worker-env.sh"
# shellcheck disable=SC2086  # $health is empty or one flag
exec prefect worker start --pool "${ANGIOKG_GPU_POOL:-angiokg-gpu}" --type process \
  --name "gpu-$(hostname)" --limit 1 $health
