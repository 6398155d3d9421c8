#!/usr/bin/env bash
# Set up and run everything CI runs: ruff, mypy (strict on src/) and the whole pytest suite.
# PostgreSQL comes from Debian's packages; the tests start their own throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev --system postgresql openssl oidentd bind9 bind9-dnsutils
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
