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
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${EXTRAS:-base}
if [ ! -f "$stamp" ]; then
  echo "==> installing dependencies (first run takes a few minutes)"
  $VENV_PY -m pip install -q --upgrade pip
  # The CPU build of torch first: a bare torch requirement would pull GBs of CUDA wheels.
  $VENV_PY -m pip install -q "torch==2.13.0" || $VENV_PY -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  $VENV_PY -m pip install -q -e ".${EXTRAS:+[$EXTRAS]}"
  touch "$stamp"
fi
export HF_HUB_OFFLINE=1 MEM0_TELEMETRY=False TOKENIZERS_PARALLELISM=false
