"""Any folder of audio -> train/valid manifests for pretraining (no labels)."""

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from vesper_fairseq.corpora.manifest import CorpusLayoutError, Row, Skipped, Utterance, summarize
from vesper_fairseq.corpora.options import (
    check_min_samples,
    exts_option,
    min_samples_option,
    seed_option,
    share_option,
)
from vesper_fairseq.corpora.pipeline import ManifestPlan, build_manifests
from vesper_fairseq.corpora.splits import check_fraction, random_holdout

logger = logging.getLogger(__name__)


@dataclass
class AudioFolderConfig:
    exts: tuple[str, ...] = exts_option(("wav", "flac"))
    valid_percent: float = share_option(0.01, "share of the files held out as valid")
    seed: int = seed_option(42)
    min_samples: int = min_samples_option()

    def __post_init__(self):
        if not self.exts or not all(e and "/" not in e for e in self.exts):
            raise ValueError(f"exts must be non-empty file extensions, got {self.exts!r}")
        check_fraction(self.valid_percent, "valid_percent")
        check_min_samples(self.min_samples)


def find_audio(root: Path, exts: tuple[str, ...]) -> list[Path]:
    """Files under ``root`` with one of ``exts`` (any case), sorted, hidden ones left out.
    Linked folders are followed (a corpus may link folders from elsewhere), each real folder
    once, so a link back up the tree ends there."""
    suffixes = {"." + e for e in exts}
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in files:
            path = Path(folder) / name
            if not name.startswith(".") and path.suffix.lower() in suffixes:
                found.append(path)
    return sorted(found)


def split_pretraining(rows: list[Row], valid_percent: float, seed: int) -> dict[str, list[Row]]:
    rows = sorted(rows, key=lambda r: r.rel)
    held = random_holdout(len(rows), valid_percent, seed)
    return {
        "train": [r for r, h in zip(rows, held) if not h],
        "valid": [r for r, h in zip(rows, held) if h],
    }


def build_pretraining(
    title: str,
    utts: list[Utterance],
    skipped: list[Skipped],
    root: Path,
    dest: Path,
    valid_percent: float,
    seed: int,
    min_samples: int,
    notes: list[str] = (),
    settings: dict | None = None,
) -> str:
    """Shared by the audio folder and LSSED: check/convert audio, split, write, summarize."""
    check_fraction(valid_percent, "valid_percent")
    plan = ManifestPlan(
        title=title,
        corpus_root=root,
        dest=dest,
        utterances=utts,
        skipped=skipped,
        outputs={"": ["train", "valid"]},
        split=lambda rows: {"": split_pretraining(rows, valid_percent, seed)},
        may_be_empty=("valid",) if valid_percent == 0 else (),
        empty_hint=" (--valid-percent 0 makes an empty valid.tsv on purpose)",
        min_samples=min_samples,
        settings=settings or {"valid_percent": valid_percent, "seed": seed},
    )
    built = build_manifests(plan)
    splits = built.layout[""]
    notes = list(notes) + [f"valid = random {valid_percent:.1%} of files (seed {seed})"]
    if not splits["valid"]:
        notes.append("valid.tsv is empty (--valid-percent 0)")
    return summarize(title, splits, built.skipped, None, notes)


def build(root: Path, dest: Path, cfg: AudioFolderConfig | None = None) -> str:
    cfg = cfg or AudioFolderConfig()
    root, dest = Path(root).resolve(), Path(dest).resolve()
    if not root.is_dir():
        raise CorpusLayoutError(f"{root} is not a folder")
    files = find_audio(root, cfg.exts)
    if not files:
        raise CorpusLayoutError(f"{root}: no audio file with extension {', '.join(cfg.exts)}")
    utts = [Utterance(p) for p in files]
    return build_pretraining(
        "audio folder", utts, [], root, dest, cfg.valid_percent, cfg.seed, cfg.min_samples,
        settings=asdict(cfg),
    )  # fmt: skip
