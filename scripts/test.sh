#!/usr/bin/env bash
# Set up and run everything CI runs: ruff, mypy (strict on src/), schemathesis and the whole
# pytest suite. PostgreSQL, ActiveMQ, BIND and oidentd come from Debian's packages, Keystone
# from PyPI (its own venv); the tests start their own throwaway servers (ActiveMQ needs a
# Java runtime: Debian's openjdk-17 satisfies it). tests/ha (network namespaces, run as root)
# needs keepalived, iproute2, curl (its check script) and envsubst (gettext-base); nginx's
# tcp and tls-passthrough ports need its stream module (libnginx-mod-stream), its caching
# proxies the cache purge module (libnginx-mod-http-cache-purge).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev --system postgresql openssl oidentd activemq bind9 bind9-dnsutils nginx haproxy \
  libnginx-mod-stream libnginx-mod-http-cache-purge keepalived iproute2 curl gettext-base
# A real Keystone for tests/auth, in its own venv (keystone's pins are not Portway's).
scripts/keystone.sh
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
if [ $# -gt 0 ]; then
  exec .venv/bin/pytest "$@"
fi
# The API against its own OpenAPI document: schemathesis on a real `portway serve` with two
# projects (tests/security/test_schemathesis.py, about two minutes) is its own step, so a
# contract failure is named as such; the suite after it skips that module.
echo "== schemathesis"
status=0
.venv/bin/pytest -q tests/security/test_schemathesis.py || status=$?
echo "== the rest of the suite"
.venv/bin/pytest --deselect tests/security/test_schemathesis.py || status=$?
exit $status
