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

import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from vesper_fairseq.corpora.audio_folder import find_audio
from vesper_fairseq.corpora.csv_table import read_csv_table
from vesper_fairseq.corpora.emobox_speakers import speaker_rule
from vesper_fairseq.corpora.labelled_splits import carve_valid, class_order, make_splits
from vesper_fairseq.corpora.manifest import CorpusLayoutError, Row, Skipped, Utterance, summarize
from vesper_fairseq.corpora.options import (
    check_min_samples,
    exts_option,
    label_map_option,
    min_samples_option,
    option,
    seed_option,
    share_option,
)
from vesper_fairseq.corpora.pipeline import ManifestPlan, add_to_record, build_manifests
from vesper_fairseq.corpora.splits import check_fraction
from vesper_fairseq.label_map import LabelMap, label_problem, parse_label_map

logger = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "train", "valid": "valid", "val": "valid", "dev": "valid"}
SPLIT_NAMES.update({"validation": "valid", "test": "test"})
DEFAULT_EXTS = ("wav", "flac", "ogg", "mp3", "m4a", "mp4")


def parse_classes(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


@dataclass
class LabelledConfig:
    path_column: str = option("path", "table column of the audio paths")
    label_column: str = option("label", "table column of the labels")
    speaker_column: str | None = option(None, "table column of the speakers [speaker, if present]")
    split_column: str | None = option(None, "table column train/valid/test [split, if present]")
    audio_root: str | None = option(None, "folder the table's paths are relative to [its folder]")
    label_map: str | None = label_map_option()
    valid_percent: float = share_option(0.1, "share for valid")
    test_percent: float = share_option(0.1, "share for test")
    seed: int = seed_option(42)
    speaker_regex: str | None = option(None, "class folders: regex whose groups give the speaker")
    exts: tuple[str, ...] = exts_option(
        DEFAULT_EXTS, "class folders: comma-separated audio extensions"
    )
    min_samples: int = min_samples_option()
    classes: tuple[str, ...] = option(
        (),
        "keep only these classes (after --label-map), in this order in dict.emo.txt; "
        "rows of other labels go to skipped.tsv [every label found]",
        parse=parse_classes,
    )

    def __post_init__(self):
        check_fraction(self.valid_percent, "valid_percent")
        check_fraction(self.test_percent, "test_percent")
        if self.valid_percent + self.test_percent >= 1:
            raise ValueError("valid_percent + test_percent must stay below 1 (train needs rows)")
        if not self.exts:
            raise ValueError("exts names no file extension")
        if len(set(self.classes)) != len(self.classes) or any(map(label_problem, self.classes)):
            raise ValueError(f"classes must be distinct names without spaces, got {self.classes}")
        check_min_samples(self.min_samples)


def pick_columns(header: list[str], cfg: LabelledConfig, path: Path) -> dict[str, str | None]:
    """Column name of path, label, speaker, split (None when absent and optional)."""
    index = set(header)
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
    return {name: (col if col in index else None) for name, (col, _) in wanted.items()}


def scan_table(table: Path, root: Path, cfg: LabelledConfig):
    delimiter = "\t" if table.suffix.lower() in (".tsv", ".tab") else ","
    header, rows = read_csv_table(table, delimiter)
    cols = pick_columns(header, cfg, table)
    utts, skipped, seen = [], [], set()
    for row in rows:
        where = f"{table.name} line {row.line}"
        if row.problem:
            skipped.append(Skipped(f"{table.name}:{row.line}", f"bad-row: {where}: {row.problem}"))
            continue
        value = {k: (row.values[c] if c is not None else None) for k, c in cols.items()}
        got = table_utterance(value, where, root)
        if isinstance(got, Skipped):
            skipped.append(got)
        elif got.src in seen:
            skipped.append(Skipped(got.src, f"duplicate: listed again in {where}"))
        else:
            seen.add(got.src)
            utts.append(got)
    return utts, skipped, cols["split"] is not None


def table_utterance(value: dict, where: str, root: Path):
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
    if label_problem(value["label"]):
        return Skipped(src, f"bad-label: {where}: {label_problem(value['label'])}")
    return Utterance(src, value["label"], value["speaker"] or None, {"split": split})


def scan_folder(root: Path, cfg: LabelledConfig):
    rule = speaker_rule("", cfg.speaker_regex)
    utts, skipped = [], []
    for path in find_audio(root, cfg.exts):
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            skipped.append(Skipped(path, "no-class: not inside a class folder"))
            continue
        label = rel.parts[0]
        if label_problem(label):
            skipped.append(Skipped(path, f"bad-label: {label_problem(label)}"))
            continue
        speaker = None
        if rule is not None:
            m = rule.search("/" + rel.as_posix())
            speaker = "".join(g for g in m.groups() if g) if m else None
        utts.append(Utterance(path, label, speaker, {"split": None}))
    return utts, skipped


def apply_map(utts: list[Utterance], label_map: LabelMap) -> tuple[list, list[Skipped]]:
    kept, dropped = [], []
    for u in utts:
        label = label_map.apply(u.label)
        if label is None:
            dropped.append(Skipped(u.src, f"excluded-label: {u.label!r} dropped by the label map"))
        else:
            kept.append(replace(u, label=label))
    return kept, dropped


def keep_classes(utts: list[Utterance], classes: tuple[str, ...], where: str):
    """With ``classes`` (--classes): other labels are skipped; each class must have a row."""
    if not classes:
        return utts, []
    kept = [u for u in utts if u.label in classes]
    unknown = [
        Skipped(u.src, f"unknown-label: {u.label!r} is not one of --classes")
        for u in utts
        if u.label not in classes
    ]
    empty = [c for c in classes if not any(u.label == c for u in kept)]
    if empty:
        raise CorpusLayoutError(f"{where}: no row labelled {', '.join(empty)} (--classes)")
    return kept, unknown


def given_splits(rows: list[Row], cfg: LabelledConfig) -> tuple[dict[str, list[Row]], str]:
    rows = sorted(rows, key=lambda r: r.rel)
    by = {s: [r for r in rows if r.utt.extra["split"] == s] for s in ("train", "valid", "test")}
    if by["valid"]:
        return by, "splits as the split column gives them"
    train, valid, how = carve_valid(by["train"], cfg.valid_percent, cfg.seed)
    splits = {"train": train, "valid": valid, "test": by["test"]}
    return splits, f"train and test as the split column gives them; valid carved from train, {how}"


def scan(source: Path, cfg: LabelledConfig):
    """(root, utterances, skipped, whether the table gives splits)."""
    if source.is_dir():
        if cfg.audio_root:
            raise ValueError("--audio-root applies to a table; a class folder is its own root")
        return (source, *scan_folder(source, cfg), False)
    if not source.is_file():
        raise CorpusLayoutError(f"{source}: no such table (csv/tsv) or class folder")
    root = Path(cfg.audio_root).resolve() if cfg.audio_root else source.parent
    if not root.is_dir():
        raise CorpusLayoutError(f"--audio-root {root} is not a folder")
    return (root, *scan_table(source, root, cfg))


def build(source: Path, dest: Path, cfg: LabelledConfig | None = None) -> str:
    """Writes DEST/{train,valid,test}.{tsv,emo[,spk]}, dict.emo.txt, skipped.tsv and
    manifests.json (with the protocol); returns the summary text."""
    cfg = cfg or LabelledConfig()
    source, dest = Path(source).resolve(), Path(dest).resolve()
    label_map = parse_label_map(cfg.label_map)
    root, utts, skipped, given = scan(source, cfg)
    label_map.check_names({u.label for u in utts}, str(source))
    utts, dropped = apply_map(utts, label_map)
    utts, unknown = keep_classes(utts, cfg.classes, str(source))
    skipped += dropped + unknown
    classes = list(cfg.classes) or class_order(label_map.targets(), [u.label for u in utts])
    if len(classes) < 2:
        raise CorpusLayoutError(f"{source}: fewer than 2 classes with a usable row {classes}")
    how = []

    def split(rows: list[Row]) -> dict:
        if given:
            splits, text = given_splits(rows, cfg)
        else:
            splits, text = make_splits(rows, cfg.valid_percent, cfg.test_percent, cfg.seed)
        how.append(text)
        return {"": splits}

    plan = ManifestPlan(
        title=f"labelled {source.name}",
        corpus_root=root,
        dest=dest,
        utterances=utts,
        skipped=skipped,
        outputs={"": ["train", "valid", "test"]},
        split=split,
        classes=classes,
        empty_hint=" (raise --valid-percent / --test-percent, or give a split column)",
        min_samples=cfg.min_samples,
        settings={"source": str(source), **asdict(cfg)},
    )
    built = build_manifests(plan)
    notes = how[:1]
    if label_map.mapping:
        notes.append(f"labels mapped by --label-map {label_map.describe()}")
    with_spk = sum(1 for r in built.rows if r.utt.speaker is not None)
    notes.append(f"speakers known for {with_spk} of {len(built.rows)} files")
    add_to_record(dest, protocol=f"labelled data {source}: " + "; ".join(notes) + ".")
    return summarize(plan.title, built.layout[""], built.skipped, classes, notes)
