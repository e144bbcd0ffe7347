"""The source patch that makes fairseq 0.12.2 work on Python >= 3.11, torch >= 2.6 and numpy >=
1.24 (see README, "Why fairseq is built from a patched sdist"): applying it (idempotent), and the
check that `import vesper_fairseq` makes of the fairseq it finds. The edits themselves, with
their reasons, are the tables in edits.py and hydra_train_edits.py. Standard library only: the
installer loads this package by path (scripts/patch_fairseq.py) before fairseq is installed.

    python scripts/patch_fairseq.py ROOT

ROOT holds the ``fairseq/`` package: an unpacked sdist (patch, then build a wheel: what
``make install`` does) or a site-packages folder. Every edit is an exact text replacement with
its reason; an anchor that is neither found nor already patched fails the run, so another
fairseq version is never patched blindly.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .edits import SUPPORTED_VERSION, Edit, compat_edits, packaging_edits
from .hydra_train_edits import hydra_notice_edits, hydra_train_edits


def source_edits() -> list[Edit]:
    """Every edit of fairseq's package (an sdist's packaging: packaging_edits)."""
    return compat_edits() + hydra_notice_edits() + hydra_train_edits()


@dataclass
class PatchReport:
    version: str
    applied: int = 0
    already: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing


def fairseq_version(root: Path) -> str:
    version_txt, version_py = root / "fairseq" / "version.txt", root / "fairseq" / "version.py"
    if version_txt.exists():
        return version_txt.read_text().strip()
    if version_py.exists():
        match = re.search(r'__version__ = "([^"]+)"', version_py.read_text())
        if match:
            return match.group(1)
    raise FileNotFoundError(f"no fairseq package (version.txt or version.py) under {root}")


def _apply(text: str, edit: Edit) -> tuple[str, str]:
    """Returns (new text, outcome) with outcome one of applied / already / missing."""
    already = (edit.new and edit.new in text) or (not edit.new and edit.old not in text)
    if edit.old in text and not (edit.new and edit.new in text and edit.old in edit.new):
        return text.replace(edit.old, edit.new, 1), "applied"
    return text, "already" if already else "missing"


def patch(root: str | Path) -> PatchReport:
    root = Path(root)
    version = fairseq_version(root)
    if not version.startswith(SUPPORTED_VERSION):
        raise ValueError(f"refusing to patch fairseq {version} under {root}: written for 0.12.2")
    edits = source_edits() + (packaging_edits() if (root / "setup.py").exists() else [])
    report, texts = PatchReport(version), {}
    for edit in edits:
        path = root / edit.path
        if not path.exists():
            report.missing.append(f"{edit.path} (file absent)")
            continue
        texts[edit.path], outcome = _apply(texts.get(edit.path) or path.read_text(), edit)
        if outcome == "missing":
            report.missing.append(f"{edit.path}: {edit.old.strip()[:60]!r}")
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
    if report.ok:  # never leave a half-patched tree
        for rel, text in texts.items():
            if (root / rel).read_text() != text:
                (root / rel).write_text(text)
    return report


def missing_patches(root: str | Path) -> list[Edit]:
    """The required edits (fairseq's own code, not its bundled examples) absent from the fairseq
    package under `root`, a site-packages folder or an unpacked sdist."""
    missing = []
    for edit in source_edits():
        if not edit.required or edit.path.startswith("fairseq/examples/"):
            continue
        path = Path(root) / edit.path
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if (edit.new not in text) if edit.new else (edit.old in text):
            missing.append(edit)
    return missing


def check_installed_fairseq() -> None:
    """Raises ImportError naming each required patch the importable fairseq lacks (it is located
    without being imported: unpatched, `import fairseq` fails on Python 3.11 before saying why)."""
    spec = importlib.util.find_spec("fairseq")
    if spec is None or not spec.submodule_search_locations:
        return  # no fairseq: the import that needs it says so
    root = Path(list(spec.submodule_search_locations)[0]).parent
    missing = missing_patches(root)
    if missing:
        reasons = "".join(f"\n  - {e.path}: {e.reason}" for e in missing)
        raise ImportError(
            f"the fairseq in {root} lacks {len(missing)} of vesper-fairseq's patches:{reasons}\n"
            f"apply them with `python scripts/patch_fairseq.py {root}` (from a vesper-fairseq "
            "checkout), or install the patched wheel with `make install`"
        )


def main(argv: list[str]) -> int:
    root = argv[1] if len(argv) > 1 else "."
    try:
        report = patch(root)
    except (FileNotFoundError, ValueError) as err:
        print(f"patch_fairseq: {err}", file=sys.stderr)
        return 2
    print(
        f"fairseq {report.version} patch: {report.applied} applied, "
        f"{report.already} already present, {len(report.missing)} missing"
    )
    for item in report.missing:
        print(f"  MISSING {item}", file=sys.stderr)
    return 0 if report.ok else 1
