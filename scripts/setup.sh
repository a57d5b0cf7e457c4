#!/usr/bin/env bash
# Set up archdsl in the current Python environment: graphviz's `dot` (it draws the diagrams),
# the CPU build of torch, then archdsl itself with its development tools and the dask extra
# (Dask distributed: `--executor dask` runs trials on a cluster; docs/distributed.md).
# The README's Quick start runs this, and so does .ci/run: both install exactly the same way.
#
# torch==2.13.0 is installed first on purpose: it is the CPU build; any other torch requirement
# would pull gigabytes of CUDA packages. PYTHON names the interpreter (default: python, else
# python3).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
  if command -v python >/dev/null 2>&1; then PYTHON=python; else PYTHON=python3; fi
fi

# graphviz: apt-get as root or with password-less sudo, brew on macOS; never fails the set-up
install_dot() {
  if command -v dot >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(uname -s)" = Darwin ] && command -v brew >/dev/null 2>&1; then
    brew install graphviz && return 0
  elif command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq graphviz >/dev/null && return 0
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo apt-get update -qq && sudo apt-get install -y -qq graphviz >/dev/null && return 0
    fi
  fi
  return 1
}

if install_dot; then
  echo "setup: graphviz's dot: $(command -v dot)"
else
  cat >&2 <<'EOF'
setup: warning: graphviz's `dot` is not installed, and this script could not install it (it
  uses apt-get as root or with password-less sudo, or brew on macOS). Install it yourself:
    Debian/Ubuntu: sudo apt-get install graphviz     Fedora: sudo dnf install graphviz
    macOS: brew install graphviz                     conda: conda install -c conda-forge graphviz
    Windows: winget install graphviz
  Everything else works without it: `archdsl render` still writes .dot text, and for .svg,
  .png or .pdf it writes the .dot file and says so; the tests that draw images are skipped.
EOF
fi

"$PYTHON" -m pip install torch==2.13.0
"$PYTHON" -m pip install -e ".[dev,dask]"
