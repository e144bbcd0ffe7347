"""Your own labelled audio: a CSV/TSV table or a folder with one subfolder per class.

Table: a header line, then one row per file. Columns (names configurable): ``path`` (relative
to --audio-root, by default the table's folder, or absolute inside it), ``label``, and
optionally ``speaker`` and ``split`` (train, valid/val/dev, test). ``.tsv`` and ``.tab`` files
are tab-separated, others comma-separated. Folder: ``ROOT/<class>/**/<file>``; the class is the
first folder under ROOT, the speaker comes from --speaker-regex if given.

Splits are those of the ``split`` column when there is one (valid carved from train when no
row is valid), otherwise made: speaker-disjoint when every file has a speaker, else stratified
per class; always seeded.
"""

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vesper_fairseq.corpora.audio import MIN_SAMPLES
from vesper_fairseq.corpora.audio_folder import find_audio
from vesper_fairseq.corpora.emobox_speakers import speaker_rule
from vesper_fairseq.corpora.labelled_splits import (
    carve_valid,
    check_fraction,
    class_order,
    make_splits,
    require_rows,
)
from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Row,
    Skipped,
    Utterance,
    summarize,
    write_manifests,
    write_skipped,
)
from vesper_fairseq.corpora.store import prepare_corpus
from vesper_fairseq.io_utils import atomic_write_text
from vesper_fairseq.label_map import LabelMap, parse_label_map

logger = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "train", "valid": "valid", "val": "valid", "dev": "valid"}
SPLIT_NAMES.update({"validation": "valid", "test": "test"})
DEFAULT_EXTS = ("wav", "flac", "ogg", "mp3", "m4a", "mp4")


@dataclass
class LabelledConfig:
    path_column: str = "path"
    label_column: str = "label"
    speaker_column: str | None = None  # None: "speaker" when the table has it
    split_column: str | None = None  # None: "split" when the table has it
    audio_root: str | None = None  # None: the table's folder (or ROOT for a folder)
    label_map: str | None = None
    valid_percent: float = 0.1
    test_percent: float = 0.1
    seed: int = 42
    speaker_regex: str | None = None  # folder mode: groups of this regex give the speaker
    exts: tuple[str, ...] = DEFAULT_EXTS
    min_samples: int = MIN_SAMPLES


def pick_columns(header: list[str], cfg: LabelledConfig, path: Path) -> dict[str, int | None]:
    """Column index of path, label, speaker, split (None when absent and optional)."""
    index = {name.strip(): i for i, name in enumerate(header)}
    wanted = {
        "path": (cfg.path_column, True),
        "label": (cfg.label_column, True),
        "speaker": (cfg.speaker_column or "speaker", cfg.speaker_column is not None),
        "split": (cfg.split_column or "split", cfg.split_column is not None),
    }
    missing = [name for name, (col, required) in wanted.items() if required and col not in index]
    if missing:
        cols = ", ".join(repr(wanted[m][0]) for m in missing)
        raise CorpusLayoutError(
            f"{path}, line 1: no column {cols} in the header {header} "
            "(set the names with --path-column/--label-column/--speaker-column/--split-column)"
        )
    return {name: index.get(col) for name, (col, _) in wanted.items()}


def read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line, fields) rows; a csv error stops with the file and line."""
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            rows = [
                (reader.line_num, fields) for fields in reader if any(x.strip() for x in fields)
            ]
    except (csv.Error, UnicodeDecodeError) as exc:
        line = reader.line_num if "reader" in locals() else 1
        raise CorpusLayoutError(f"{path}, line {line}: cannot be parsed ({exc})") from None
    if not header:
        raise CorpusLayoutError(f"{path}: empty file (expected a header line, then rows)")
    return header, rows


def scan_table(table: Path, root: Path, cfg: LabelledConfig, label_map: LabelMap):
    header, rows = read_table(table)
    cols = pick_columns(header, cfg, table)
    utts, skipped, seen = [], [], set()
    for line, fields in rows:
        where = f"{table.name} line {line}"
        if len(fields) != len(header):
            problem = f"expected {len(header)} fields, got {len(fields)}"
            skipped.append(Skipped(f"{table.name}:{line}", f"bad-row: {where}: {problem}"))
            continue
        value = {k: (fields[i].strip() if i is not None else None) for k, i in cols.items()}
        got = table_utterance(value, where, root, label_map)
        if isinstance(got, Skipped):
            skipped.append(got)
        elif got.src in seen:
            skipped.append(Skipped(got.src, f"duplicate: listed again in {where}"))
        else:
            seen.add(got.src)
            utts.append(got)
    return utts, skipped, cols["split"] is not None


def table_utterance(value: dict, where: str, root: Path, label_map: LabelMap):
    if not value["path"] or not value["label"]:
        empty = "path" if not value["path"] else "label"
        return Skipped(where.replace(" line ", ":"), f"bad-row: {where}: empty {empty}")
    src = Path(os.path.abspath(root / value["path"]))
    if root not in src.parents:
        return Skipped(value["path"], f"outside-root: {where}: not under {root} (--audio-root)")
    split = None
    if value["split"] is not None:
        split = SPLIT_NAMES.get(value["split"].lower())
        if split is None:
            return Skipped(
                src, f"bad-row: {where}: split {value['split']!r} is not train/valid/test"
            )
    label = label_map.apply(value["label"])
    if label is None:
        return Skipped(
            src, f"excluded-label: {value['label']!r} dropped by the label map ({where})"
        )
    return Utterance(src, label, value["speaker"] or None, {"split": split})


def scan_folder(root: Path, cfg: LabelledConfig, label_map: LabelMap):
    rule = speaker_rule("", cfg.speaker_regex)
    utts, skipped = [], []
    for path in find_audio(root, cfg.exts):
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            skipped.append(Skipped(path, "no-class: not inside a class folder"))
            continue
        label = label_map.apply(rel.parts[0])
        if label is None:
            skipped.append(
                Skipped(path, f"excluded-label: {rel.parts[0]!r} dropped by the label map")
            )
            continue
        speaker = None
        if rule is not None:
            m = rule.search("/" + rel.as_posix())
            speaker = "".join(g for g in m.groups() if g) if m else None
        utts.append(Utterance(path, label, speaker, {"split": None}))
    return utts, skipped


def given_splits(rows: list[Row], cfg: LabelledConfig) -> tuple[dict[str, list[Row]], str]:
    by = {s: [r for r in rows if r.utt.extra["split"] == s] for s in ("train", "valid", "test")}
    if by["valid"]:
        return by, "splits as the split column gives them"
    train, valid, how = carve_valid(by["train"], cfg.valid_percent, cfg.seed)
    splits = {"train": train, "valid": valid, "test": by["test"]}
    return splits, f"train and test as the split column gives them; valid carved from train, {how}"


def check_config(cfg: LabelledConfig) -> None:
    check_fraction("--valid-percent", cfg.valid_percent)
    check_fraction("--test-percent", cfg.test_percent)
    if cfg.valid_percent + cfg.test_percent >= 1:
        raise ValueError("--valid-percent plus --test-percent must stay below 1 (train needs rows)")
    if not cfg.exts:
        raise ValueError("--ext names no extension")


def scan(source: Path, cfg: LabelledConfig, label_map: LabelMap):
    """(root, utterances, skipped, whether the table gives splits)."""
    if source.is_dir():
        if cfg.audio_root:
            raise ValueError("--audio-root applies to a table; a class folder is its own root")
        return (source, *scan_folder(source, cfg, label_map), False)
    if not source.is_file():
        raise CorpusLayoutError(f"{source}: no such table (csv/tsv) or class folder")
    root = Path(cfg.audio_root).resolve() if cfg.audio_root else source.parent
    if not root.is_dir():
        raise CorpusLayoutError(f"--audio-root {root} is not a folder")
    return (root, *scan_table(source, root, cfg, label_map))


def build(source: Path, dest: Path, cfg: LabelledConfig | None = None) -> str:
    """Writes DEST/{train,valid,test}.{tsv,emo[,spk]}, dict.emo.txt, skipped.tsv and
    protocol.txt; returns the summary text."""
    cfg = cfg or LabelledConfig()
    check_config(cfg)
    source, dest = Path(source).resolve(), Path(dest).resolve()
    label_map = parse_label_map(cfg.label_map)
    root, utts, skipped, given = scan(source, cfg, label_map)
    labels = sorted({u.label for u in utts})
    if len(labels) < 2:
        raise CorpusLayoutError(f"{source}: fewer than 2 classes with a usable row {labels}")
    base, rows, bad = prepare_corpus(utts, root, dest, cfg.min_samples, desc=source.name)
    skipped += bad
    if given:
        splits, how = given_splits(rows, cfg)
    else:
        splits, how = make_splits(rows, cfg.valid_percent, cfg.test_percent, cfg.seed)
    require_rows(splits, str(source))
    classes = class_order(label_map.targets(), rows)
    write_manifests(dest, base, splits, classes)
    write_skipped(dest, skipped, root)
    notes = [how]
    if label_map.mapping:
        notes.append(f"labels mapped by --label-map {label_map.describe()}")
    with_spk = sum(1 for r in rows if r.utt.speaker is not None)
    notes.append(f"speakers known for {with_spk} of {len(rows)} files")
    text = f"labelled data {source}: " + "; ".join(notes)
    atomic_write_text(dest / "protocol.txt", text + ".\n")
    return summarize(f"labelled {source.name}", splits, skipped, classes, notes)
