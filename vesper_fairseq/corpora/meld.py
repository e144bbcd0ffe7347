"""MELD (MELD.Raw as released: csv files plus the extracted train/dev/test clip folders).

``{train,dev,test}_sent_emo.csv`` have the columns Sr No., Utterance, Speaker, Emotion,
Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime. The clip of a row is
``dia{Dialogue_ID}_utt{Utterance_ID}.mp4`` in ``train_splits/``, ``dev_splits_complete/`` or
``output_repeated_splits_test/`` (the folders inside train/dev/test.tar.gz); wav or flac files
with the same stem (already extracted audio) are used in preference to mp4. Clips in those
folders that no csv row names (``final_videos_test*``, extra dev clips) are ignored. Known gaps in
the release (dev ``dia110_utt7`` absent, train ``dia125_utt3`` broken) end up in skipped.tsv.
The speaker is the csv's Speaker field (the character's name, shared across splits).
"""

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from vesper_fairseq.corpora.audio import MIN_SAMPLES
from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Skipped,
    Utterance,
    require_dir,
    summarize,
    write_manifests,
    write_skipped,
)
from vesper_fairseq.corpora.store import prepare_corpus

logger = logging.getLogger(__name__)

CLASSES = ["neutral", "anger", "joy", "sadness", "surprise", "disgust", "fear"]
# split -> (csv file, clip folders tried in order)
SPLITS = {
    "train": ("train_sent_emo.csv", ["train_splits", "train_splits_wav", "train"]),
    "valid": ("dev_sent_emo.csv", ["dev_splits_complete", "dev_splits", "dev_splits_wav", "dev"]),
    "test": (
        "test_sent_emo.csv",
        ["output_repeated_splits_test", "test_splits", "test_splits_wav", "test"],
    ),
}
AUDIO_EXTS = (".wav", ".flac", ".mp4")
REQUIRED_COLUMNS = ("Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")


@dataclass
class MeldConfig:
    min_samples: int = MIN_SAMPLES


def check_root(root: Path) -> dict[str, tuple[Path, list[Path]]]:
    """For each split, its csv and the existing clip folders; one clear error otherwise."""
    require_dir(root, "MELD")
    found, problems = {}, []
    for split, (csv_name, folders) in SPLITS.items():
        # The folders come out of train/dev/test.tar.gz, at ROOT or one level below it.
        dirs = [d for f in folders for d in [root / f, *sorted(root.glob(f"*/{f}"))] if d.is_dir()]
        if not (root / csv_name).is_file():
            problems.append(csv_name)
        if not dirs:
            problems.append(f"{folders[0]}/ (or {', '.join(f + '/' for f in folders[1:])})")
        found[split] = (root / csv_name, dirs)
    if problems:
        raise CorpusLayoutError(
            f"{root} does not look like MELD.Raw: expected train_sent_emo.csv, dev_sent_emo.csv, "
            "test_sent_emo.csv and the clip folders train_splits/, dev_splits_complete/, "
            f"output_repeated_splits_test/ (dia{{D}}_utt{{U}}.mp4); missing {'; '.join(problems)}"
        )
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    # The release mixes encodings in the Utterance text; only ids, speaker and emotion matter.
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise CorpusLayoutError(f"{path}: missing column(s) {', '.join(missing)}")
        return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def find_clip(dirs: list[Path], stem: str) -> Path | None:
    for ext in AUDIO_EXTS:
        for d in dirs:
            if (d / f"{stem}{ext}").is_file():
                return d / f"{stem}{ext}"
    return None


def scan(root: Path) -> tuple[dict[str, list[Utterance]], list[Skipped]]:
    utts: dict[str, list[Utterance]] = {}
    skipped: list[Skipped] = []
    for split, (csv_path, dirs) in check_root(root).items():
        utts[split], seen = [], set()
        for line, row in enumerate(read_csv(csv_path), start=2):
            where = f"{csv_path.name} line {line}"
            try:
                stem = f"dia{int(row['Dialogue_ID'])}_utt{int(row['Utterance_ID'])}"
            except ValueError:
                skipped.append(Skipped(f"{csv_path.name}:{line}", f"bad-row: ids in {where}"))
                continue
            label = row["Emotion"].lower()
            clip = find_clip(dirs, stem)
            shown = clip or dirs[0] / f"{stem}.mp4"
            if stem in seen:
                skipped.append(Skipped(shown, f"duplicate: {stem} again in {where}"))
            elif label not in CLASSES:
                skipped.append(Skipped(shown, f"excluded-label: {label!r} in {where}"))
            elif clip is None:
                skipped.append(Skipped(shown, f"missing: {where} names {stem}, no clip found"))
            else:
                speaker = " ".join(row["Speaker"].split()) or "unknown"
                utts[split].append(Utterance(clip, label, speaker, {"split": split}))
            seen.add(stem)
    return utts, skipped


def build(root: Path, dest: Path, cfg: MeldConfig | None = None) -> str:
    cfg = cfg or MeldConfig()
    root, dest = Path(root).resolve(), Path(dest).resolve()
    by_split, skipped = scan(root)
    everything = [u for split in SPLITS for u in by_split[split]]
    base, rows, bad = prepare_corpus(everything, root, dest, cfg.min_samples, desc="MELD")
    skipped += bad
    splits = {s: [r for r in rows if r.utt.extra["split"] == s] for s in SPLITS}
    write_manifests(dest, base, splits, CLASSES)
    write_skipped(dest, skipped, root)
    note = "official splits: valid = dev_sent_emo.csv, test = test_sent_emo.csv"
    return summarize("MELD", splits, skipped, CLASSES, [note])
