#!/usr/bin/env bash
# One command, about 5 minutes on a GPU: Vesper pretraining (online / stored targets / cached
# features, fp32 / bf16) and inference speed. --dry-run: end to end on CPU at a tiny size.
# Python: $PYTHON, else the project's .venv, else python on the PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$here/../.venv/bin/python" ]; then PYTHON="$here/../.venv/bin/python"
    else PYTHON="$(command -v python || command -v python3)"; fi
fi
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" "$here/gpu_check.py" "$@"
