#!/usr/bin/env sh
# `make setup`'s step for jemalloc, the malloc that keeps a long extraction's memory flat
# (extraction/jemalloc.py). Installs Debian's libjemalloc2 where that needs no one's say (root
# with apt-get: containers, CI); elsewhere says how. Never fails the set-up: without jemalloc
# everything runs on glibc's malloc. ANGIOKG_JEMALLOC=0 skips it.
#   sh infra/scripts/install-jemalloc.sh PYTHON   (the venv's python, with the project installed)
set -u
python="${1:?give the python that has the project installed, e.g. .venv/bin/python}"
[ "${ANGIOKG_JEMALLOC:-}" = 0 ] && exit 0
[ "$(uname -s)" = Linux ] || exit 0
# found where angiokg looks (extraction.jemalloc.SEARCHED, or ANGIOKG_JEMALLOC): nothing to do
"$python" -c 'import sys; from extraction import jemalloc; sys.exit(jemalloc.library() is None)' \
  2> /dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -q --no-install-recommends libjemalloc2 > /dev/null 2>&1 \
     || { apt-get update -q > /dev/null 2>&1 \
          && apt-get install -y -q --no-install-recommends libjemalloc2 > /dev/null 2>&1; }; then
    echo "installed libjemalloc2 (Debian): extraction runs under jemalloc"
    exit 0
  fi
  echo "note: apt-get could not install libjemalloc2; extraction runs on glibc's malloc" >&2
  exit 0
fi
echo "note: no jemalloc here, so extraction runs on glibc's malloc, whose memory grows over" \
     "long archives; Debian/Ubuntu: sudo apt-get install libjemalloc2, Fedora: sudo dnf" \
     "install jemalloc (then nothing else to do: angiokg finds it)" >&2
exit 0
