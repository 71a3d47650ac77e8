# Shared by bin/run and bin/test: a virtualenv in .venv with everything installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
VENV_PY=.venv/bin/python
# This machine's pip config names local mirrors that may be absent; their warnings are noise.
pipq() { "$VENV_PY" -m pip install -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; return "${PIPESTATUS[0]}"; }
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${EXTRAS:-base}
if [ ! -f "$stamp" ]; then
  echo "==> installing dependencies (first run takes a few minutes)"
  pipq --upgrade pip
  # The CPU build of torch first: a bare torch requirement would pull GBs of CUDA wheels.
  pipq "torch==2.13.0"
  pipq -e ".${EXTRAS:+[$EXTRAS]}"
  touch "$stamp"
fi
export HF_HUB_OFFLINE=1 MEM0_TELEMETRY=False TOKENIZERS_PARALLELISM=false
