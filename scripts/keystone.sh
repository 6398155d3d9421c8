#!/usr/bin/env bash
# The venv of the real Keystone the tests run (tests/auth): PyPI keystone and uWSGI, pinned
# in scripts/keystone-requirements.txt, in .venv-keystone (gitignored; kept between runs of
# one checkout, so only the first run pays for it: about 1-6 minutes on 2 busy cores, most
# of it building uWSGI, whose wheel pip then caches).
# Usage: scripts/keystone.sh    (prints nothing when the venv is already up to date)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-keystone
requirements=scripts/keystone-requirements.txt
stamp="$venv/.installed"
if [ -f "$stamp" ] && [ ! "$requirements" -nt "$stamp" ]; then
  exit 0
fi
PYTHON="${PYTHON:-python3}"
echo "keystone: installing Keystone and uWSGI into $venv"
started=$(date +%s)
rm -rf "$venv"
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q -r "$requirements"
touch "$stamp"
echo "keystone: $venv ready in $(( $(date +%s) - started )) s"
