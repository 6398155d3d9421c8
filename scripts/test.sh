#!/usr/bin/env bash
# Set up and run everything CI runs: ruff, mypy (strict on src/) and the whole pytest suite.
# PostgreSQL and ActiveMQ come from Debian's packages; the tests start their own throwaway
# cluster and broker (ActiveMQ needs a Java runtime: Debian's openjdk-17 satisfies it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev --system postgresql openssl oidentd activemq
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
