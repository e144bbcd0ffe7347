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

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from vesper_fairseq.corpora.csv_table import CsvRow, read_csv_table
from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Row,
    Skipped,
    Utterance,
    require_dir,
    summarize,
)
from vesper_fairseq.corpora.options import label_map_option, min_samples_option
from vesper_fairseq.corpora.pipeline import ManifestPlan, build_manifests
from vesper_fairseq.label_map import parse_label_map

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
    min_samples: int = min_samples_option()
    label_map: str | None = label_map_option()


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


def read_csv(path: Path) -> list[CsvRow]:
    # The release mixes encodings in the Utterance text; only ids, speaker and emotion matter.
    columns, rows = read_csv_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CorpusLayoutError(f"{path}: missing column(s) {', '.join(missing)}")
    return rows


class ClipIndex:
    """The clips of a split's folders by lower-case name (``dia0_utt0.MP4`` is found too)."""

    def __init__(self, dirs: list[Path]):
        self.by_name: dict[str, Path] = {}
        for d in dirs:
            for path in sorted(d.iterdir()):
                if not path.name.startswith(".") and path.is_file():
                    self.by_name.setdefault(path.name.lower(), path)

    def find(self, stem: str) -> Path | None:
        for ext in AUDIO_EXTS:
            hit = self.by_name.get(f"{stem}{ext}".lower())
            if hit is not None:
                return hit
        return None


def scan(root: Path) -> tuple[dict[str, list[Utterance]], list[Skipped]]:
    utts: dict[str, list[Utterance]] = {}
    skipped: list[Skipped] = []
    for split, (csv_path, dirs) in check_root(root).items():
        utts[split], seen, clips = [], set(), ClipIndex(dirs)
        for row in read_csv(csv_path):
            where = f"{csv_path.name} line {row.line}"
            bad = f"{csv_path.name}:{row.line}"
            if row.problem:
                skipped.append(Skipped(bad, f"bad-row: {row.problem} in {where}"))
                continue
            try:
                ids = int(row.values["Dialogue_ID"]), int(row.values["Utterance_ID"])
            except ValueError:
                expected = "expected integer Dialogue_ID and Utterance_ID"
                skipped.append(Skipped(bad, f"bad-row: {expected} in {where}"))
                continue
            stem = f"dia{ids[0]}_utt{ids[1]}"
            label = row.values["Emotion"].lower()
            clip = clips.find(stem)
            shown = clip or dirs[0] / f"{stem}.mp4"
            if stem in seen:
                skipped.append(Skipped(shown, f"duplicate: {stem} again in {where}"))
            elif label not in CLASSES:
                skipped.append(Skipped(shown, f"excluded-label: {label!r} in {where}"))
            elif clip is None:
                skipped.append(Skipped(shown, f"missing: {where} names {stem}, no clip found"))
            else:
                speaker = " ".join(row.values["Speaker"].split()) or "unknown"
                utts[split].append(Utterance(clip, label, speaker, {"split": split}))
            seen.add(stem)
    return utts, skipped


def official_splits(rows: list[Row]) -> dict[str, dict[str, list[Row]]]:
    return {"": {s: [r for r in rows if r.utt.extra["split"] == s] for s in SPLITS}}


def build(root: Path, dest: Path, cfg: MeldConfig | None = None) -> str:
    cfg = cfg or MeldConfig()
    root, dest = Path(root).resolve(), Path(dest).resolve()
    by_split, skipped = scan(root)
    plan = ManifestPlan(
        title="MELD",
        corpus_root=root,
        dest=dest,
        utterances=[u for split in SPLITS for u in by_split[split]],
        skipped=skipped,
        outputs={"": list(SPLITS)},
        split=official_splits,
        classes=CLASSES,
        min_samples=cfg.min_samples,
        settings=asdict(cfg),
        label_map=parse_label_map(cfg.label_map),
    )
    built = build_manifests(plan)
    note = "official splits: valid = dev_sent_emo.csv, test = test_sent_emo.csv"
    return summarize("MELD", built.layout[""], built.skipped, built.classes, [note])
