#!/usr/bin/env bash
# Set up and run Portway with embedded defaults: SQLite in ./var/portway,
# HTTP data plane on 127.0.0.1:8080, HTTPS on 127.0.0.1:8443, API on 127.0.0.1:5668.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/portway serve "$@"
