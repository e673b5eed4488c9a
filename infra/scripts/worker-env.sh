# Sourced by the start-*-worker.sh scripts: what every worker's flow runs share.
# Progress bars belong at a person's terminal, not in a worker's output (where each redraw
# is a line): Hugging Face's bars ("Loading weights", "Writing model shards") are off here;
# ours switch themselves off when stderr is not a terminal.
export HF_HUB_DISABLE_PROGRESS_BARS="${HF_HUB_DISABLE_PROGRESS_BARS:-1}"
health=""
if [ -n "${ANGIOKG_WORKER_HEALTH_PORT:-}" ]; then
  export PREFECT_WORKER_WEBSERVER_HOST="${PREFECT_WORKER_WEBSERVER_HOST:-0.0.0.0}"
  export PREFECT_WORKER_WEBSERVER_PORT="$ANGIOKG_WORKER_HEALTH_PORT"
  health="--with-healthcheck"
fi
# The flow runs a worker starts extract long archives: under jemalloc where it is installed
# (the images install it), for flat memory (extraction/jemalloc.py). `angiokg` preloads it by
# itself; a worker's flow runs are not `angiokg`, so the worker's environment carries it.
# ANGIOKG_JEMALLOC=0 keeps glibc's malloc.
preload="$(python -m extraction.jemalloc || true)"
if [ -n "$preload" ]; then
  export LD_PRELOAD="$preload"
fi
