#!/usr/bin/env bash
# Portway load benchmarks against nginx and HAProxy (see bench/README.md).
# Usage: bench/run.sh [--quick] [--duration S] [--repeat N] [--targets ...] [--scenarios ...]
# Installs nginx, haproxy, wrk and openssl from Debian when they are missing, then runs the
# Python driver. Every server it starts listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in nginx:nginx haproxy:haproxy wrk:wrk openssl:openssl; do
  cmd="${pair%%:*}" pkg="${pair##*:}"
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "bench: installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
# Debian's nginx package may start a system-wide nginx; the benchmark never uses it.

[ -x .venv/bin/python ] || scripts/setup.sh
export PATH="$PATH:/usr/sbin:/sbin"
PYTHONPATH="bench${PYTHONPATH:+:$PYTHONPATH}" exec .venv/bin/python -m portway_bench "$@"
