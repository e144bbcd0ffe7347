"""LSSED (Fan et al. 2021): pretraining manifests from its metadata csv and audio folder.

LSSED is distributed on request and its file layout is not publicly documented, so this reader
assumes only what any release of it must have: a csv with a header row naming, per row, one
audio file, and the audio files somewhere under ROOT. Assumptions, all checked at run time:

- the metadata csv is ``--metadata``, or the only ``*.csv`` at ROOT or one level below (when
  there are several, the one whose name contains "meta");
- the file column is the first whose name is one of FILE_COLUMNS (case and spaces ignored),
  else the first column where most values name audio files; a value may be a path relative to ROOT
  or to the csv's folder, a file name, or a file name without extension;
- a speaker column (SPEAKER_COLUMNS), when present, gives ``{split}.spk``; labels are not needed.

Audio files that the csv does not name are ignored; rows naming a missing file are skipped.
"""

import logging
import os
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from vesper_fairseq.corpora.audio_folder import build_pretraining, find_audio
from vesper_fairseq.corpora.csv_table import read_csv_table
from vesper_fairseq.corpora.manifest import CorpusLayoutError, Skipped, Utterance
from vesper_fairseq.corpora.options import (
    check_min_samples,
    min_samples_option,
    option,
    seed_option,
    share_option,
)
from vesper_fairseq.corpora.splits import check_fraction

logger = logging.getLogger(__name__)

FILE_COLUMNS = (
    "file", "filename", "file_name", "filepath", "file_path", "path", "wav", "wav_path",
    "wav_file", "audio", "audio_path", "audio_file", "name", "utt", "utt_id", "utterance_id",
    "id",
)  # fmt: skip
SPEAKER_COLUMNS = ("speaker", "speaker_id", "spk", "spk_id", "subject", "subject_id")
AUDIO_EXTS = ("wav", "flac", "mp3", "ogg", "m4a", "mp4")


@dataclass
class LssedConfig:
    metadata: Path | None = option(None, "the metadata csv [the csv found under ROOT]")
    valid_percent: float = share_option(0.01, "share of the speakers held out as valid")
    seed: int = seed_option(42)
    min_samples: int = min_samples_option()

    def __post_init__(self):
        check_fraction(self.valid_percent, "valid_percent")
        check_min_samples(self.min_samples)


def _norm(column: str) -> str:
    return "_".join(column.strip().lower().replace("-", " ").split())


def find_metadata(root: Path) -> Path:
    found = sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv"))
    found = [p for p in found if not p.name.startswith(".")]
    meta = [p for p in found if "meta" in p.name.lower()]
    if len(found) == 1 or len(meta) == 1:
        return found[0] if len(found) == 1 else meta[0]
    raise CorpusLayoutError(
        f"{root} does not look like LSSED: expected one metadata csv (with a header row and a "
        "column naming the audio files) at ROOT or one level below, and the audio under ROOT; "
        + (
            f"found several: {', '.join(p.name for p in found)} (pass --metadata)"
            if found
            else "found no csv"
        )
    )


class AudioIndex:
    """Resolves a metadata value to a file: relative path, file name, or name without suffix."""

    def __init__(self, root: Path, files: list[Path]):
        self.root = root
        self.by_rel = {p.relative_to(root).as_posix(): p for p in files}
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        self.by_lower: dict[str, list[Path]] = defaultdict(list)  # a.wav names A.WAV too
        for p in files:
            for key in (p.name, p.stem):
                self.by_name[key].append(p)
                self.by_lower[key.lower()].append(p)

    def resolve(self, value: str, csv_dir: Path) -> Path | str:
        """The file, or the reason it could not be found."""
        value = value.strip().replace("\\", "/")
        for base in (csv_dir, self.root):
            cand = Path(os.path.normpath(base / value))
            if cand.as_posix().startswith(self.root.as_posix() + "/"):
                hit = self.by_rel.get(cand.relative_to(self.root).as_posix())
                if hit is not None:
                    return hit
        name = Path(value).name
        hits = sorted(set(self.by_name.get(name) or self.by_lower.get(name.lower(), [])))
        if len(hits) == 1:
            return hits[0]
        if hits:
            return f"ambiguous: {value!r} matches {len(hits)} files"
        return f"missing: no audio file for {value!r}"


def _pick_column(columns: list[str], rows: list[dict], index: AudioIndex, csv_dir: Path) -> str:
    by_norm = {_norm(c): c for c in columns}
    for name in FILE_COLUMNS:
        if name in by_norm:
            return by_norm[name]
    for c in columns:
        sample = [r[c] for r in rows[:50] if r.get(c)]
        hits = sum(isinstance(index.resolve(v, csv_dir), Path) for v in sample)
        if sample and hits >= 0.5 * len(sample):
            return c
    raise CorpusLayoutError(
        f"no column of the metadata names audio files: columns are {columns}; expected one of "
        f"{', '.join(FILE_COLUMNS)} or values matching files under the audio folder"
    )


def scan(root: Path, cfg: LssedConfig) -> tuple[list[Utterance], list[Skipped], list[str]]:
    meta = Path(cfg.metadata).resolve() if cfg.metadata else find_metadata(root)
    if not meta.is_file():
        raise CorpusLayoutError(f"metadata csv {meta} not found")
    columns, table = read_csv_table(meta)
    rows = [r.values for r in table]
    if not columns or not rows:
        raise CorpusLayoutError(f"{meta}: expected a header row and one row per audio file")
    files = [p for p in find_audio(root, AUDIO_EXTS) if p.resolve() != meta]
    index = AudioIndex(root, files)
    file_col = _pick_column(columns, rows, index, meta.parent)
    spk_col = next((c for c in columns if _norm(c) in SPEAKER_COLUMNS), None)
    utts, skipped, used = [], [], set()
    for entry in table:
        row, where = entry.values, f"{meta.name} line {entry.line}"
        value = row.get(file_col) or ""
        hit = index.resolve(value, meta.parent) if value else "bad-row: empty file name"
        if entry.problem:
            hit = f"bad-row: {entry.problem}"
        if isinstance(hit, str):
            skipped.append(Skipped(value or where, f"{hit} ({where})"))
        elif hit in used:
            skipped.append(Skipped(hit, f"duplicate: named again in {where}"))
        else:
            used.add(hit)
            speaker = (" ".join(row.get(spk_col, "").split()) or "unknown") if spk_col else None
            utts.append(Utterance(hit, None, speaker))
    notes = [f"metadata {meta.name}: file column {file_col!r}, speaker column {spk_col!r}"]
    unnamed = len(files) - len(used)
    if unnamed:
        notes.append(f"{unnamed} audio files under ROOT not named in the metadata were ignored")
    return utts, skipped, notes


def build(root: Path, dest: Path, cfg: LssedConfig | None = None) -> str:
    cfg = cfg or LssedConfig()
    root, dest = Path(root).resolve(), Path(dest).resolve()
    if not root.is_dir():
        raise CorpusLayoutError(f"{root} is not a folder")
    utts, skipped, notes = scan(root, cfg)
    return build_pretraining(
        "LSSED", utts, skipped, root, dest, cfg.valid_percent, cfg.seed, cfg.min_samples, notes,
        settings=asdict(cfg),
    )  # fmt: skip
