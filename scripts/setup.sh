#!/usr/bin/env bash
# Prepare a fresh machine: a virtualenv in .venv with Portway and its pinned dependencies.
# Usage: scripts/setup.sh [--dev] [--system PKG...]
#   --dev        also install the test and lint tools
#   --system     Debian packages the caller needs (installed with apt-get when missing)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
system_pkgs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) dev=1 ;;
    --system) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do system_pkgs+=("$1"); shift; done; continue ;;
    *) echo "setup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

missing=()
for pkg in "${system_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
    # Debian splits ensurepip out of the interpreter package.
    rm -rf .venv
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv .venv
  fi
fi
stamp=".venv/.portway-installed-$dev"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ "$dev" = 1 ]; then
    .venv/bin/python -m pip install -q -e '.[dev]'
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi
