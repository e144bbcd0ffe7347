#!/usr/bin/env python3
"""Patches fairseq 0.12.2 for Python >= 3.11, torch >= 2.6 and numpy >= 1.24 (the edits and their
reasons: the package vesper_fairseq/fairseq_patch/, loaded by path so that neither fairseq nor
this project needs to be importable).

    python scripts/patch_fairseq.py ROOT     # an unpacked sdist or a site-packages folder
"""

import importlib.util
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "vesper_fairseq" / "fairseq_patch"
spec = importlib.util.spec_from_file_location(
    "vesper_fairseq_patch", SOURCE / "__init__.py", submodule_search_locations=[str(SOURCE)]
)
fairseq_patch = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = fairseq_patch  # dataclasses look their module up there
spec.loader.exec_module(fairseq_patch)

if __name__ == "__main__":
    sys.exit(fairseq_patch.main(sys.argv))
