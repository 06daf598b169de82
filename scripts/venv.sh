# Sourced by test.sh and demo.sh: create/reuse the virtual environment
# ($SPIKEGPU_VENV, default .venv) and install spikegpu with extras "$1".
VENV="${SPIKEGPU_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q -e ".[$1]"
bash scripts/ensure-opencl.sh "$VENV/bin/python"
