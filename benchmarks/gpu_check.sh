#!/usr/bin/env bash
# One command, about 5 minutes on a GPU: Vesper pretraining (online / stored targets / cached
# features, fp32 / bf16) and inference speed. --dry-run: end to end on CPU at a tiny size.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" "$here/gpu_check.py" "$@"
