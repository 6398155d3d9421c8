#!/usr/bin/env bash
# Set up and run everything CI runs: ruff, mypy (strict on src/) and the whole pytest suite.
# PostgreSQL and BIND come from Debian's packages, Keystone from PyPI (its own venv); the
# tests start their own throwaway servers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev --system postgresql openssl oidentd bind9 bind9-dnsutils
# A real Keystone for tests/auth, in its own venv (keystone's pins are not Portway's).
scripts/keystone.sh
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
