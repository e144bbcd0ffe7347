"""Any folder of audio -> train/valid manifests for pretraining (no labels)."""

import logging
from dataclasses import dataclass
from pathlib import Path

from vesper_fairseq.corpora.audio import MIN_SAMPLES
from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Row,
    Skipped,
    Utterance,
    summarize,
    write_manifests,
    write_skipped,
)
from vesper_fairseq.corpora.splits import random_holdout
from vesper_fairseq.corpora.store import prepare_corpus

logger = logging.getLogger(__name__)


@dataclass
class AudioFolderConfig:
    exts: tuple[str, ...] = ("wav", "flac")
    valid_percent: float = 0.01
    seed: int = 42
    min_samples: int = MIN_SAMPLES


def parse_exts(text: str) -> tuple[str, ...]:
    exts = tuple(e.strip().lower().lstrip(".") for e in text.split(",") if e.strip())
    if not exts:
        raise ValueError(f"no extension in {text!r}")
    return exts


def find_audio(root: Path, exts: tuple[str, ...]) -> list[Path]:
    """Files under ``root`` with one of ``exts`` (any case), sorted, hidden ones left out."""
    suffixes = {"." + e for e in exts}
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in suffixes and (path.is_file() or path.is_symlink()):
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
) -> str:
    """Shared by the audio folder and LSSED: check/convert audio, split, write, summarize."""
    base, rows, bad = prepare_corpus(utts, root, dest, min_samples, desc=title)
    skipped = skipped + bad
    if not rows:
        raise CorpusLayoutError(f"{root}: none of the {len(utts)} audio files is usable")
    splits = split_pretraining(rows, valid_percent, seed)
    write_manifests(dest, base, splits)
    write_skipped(dest, skipped, root)
    notes = list(notes) + [f"valid = random {valid_percent:.1%} of files (seed {seed})"]
    if not splits["valid"]:
        notes.append("valid.tsv is empty: raise --valid-percent for a validation set")
    return summarize(title, splits, skipped, None, notes)


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
        "audio folder", utts, [], root, dest, cfg.valid_percent, cfg.seed, cfg.min_samples
    )
