"""EmoBox partitions (github.com/emo-box/EmoBox, Interspeech 2024) of one corpus.

EMOBOX_DATA_DIR is EmoBox's ``data/`` folder. For corpus C it reads every
``C/fold_{k}/C_{split}_fold_{k}.jsonl`` (``train`` and ``test`` always; ``valid`` where EmoBox
has one, e.g. MELD; extra test sets such as MER2023's ``test1``) and ``C/label_map.json`` (raw
label -> EmoBox class, e.g. IEMOCAP's exc -> Happy). Each jsonl line is a record with ``key``,
``dataset``, ``wav`` (relative to EmoBox's user folder: ``downloads/C/...``), ``emo``, and
``sample_rate``, ``length``, ``num_frame``, ``channel``, ``type``, ``task``, which are not
trusted (the audio itself is measured). Older files spell ``wav``/``emo`` as ``audio``/``label``;
both are read. Records with ``start_time``/``end_time`` (seconds; segments of one long
recording, as in PAVOQUE) are cut into the 16 kHz cache. Other files (``*.json``,
``C_test_fold1.jsonl``) are ignored.

A ``wav`` path is looked up under ``--audio-root`` as written, then without its leading
``downloads/``, then without ``downloads/C/``.
"""

import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from vesper_fairseq.corpora.emobox_records import field_text, read_jsonl, record_segment
from vesper_fairseq.corpora.emobox_speakers import speaker_of, speaker_rule
from vesper_fairseq.corpora.labelled_splits import carve_valid, class_order
from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Row,
    Skipped,
    Utterance,
    require_dir,
    summarize,
)
from vesper_fairseq.corpora.options import (
    LABEL_MAP_HELP,
    check_min_samples,
    label_map_option,
    min_samples_option,
    option,
    seed_option,
    share_option,
)
from vesper_fairseq.corpora.pipeline import ManifestPlan, add_to_record, build_manifests
from vesper_fairseq.corpora.splits import check_fraction
from vesper_fairseq.label_map import LabelMap, label_problem, parse_label_map, read_json_map

logger = logging.getLogger(__name__)

_FOLD = re.compile(r"^fold_(\d+)$")


@dataclass
class EmoboxConfig:
    label_map: str | None = label_map_option(
        LABEL_MAP_HELP + "; applied after EmoBox's own label_map.json"
    )
    valid_percent: float = share_option(
        0.2,
        "share of EmoBox's train carved as valid (by speaker where known) when EmoBox "
        "has no valid split",
    )
    seed: int = seed_option(42, "seed of the valid carving (+ fold)")
    speaker_regex: str | None = option(
        None,
        "regular expression whose groups give the speaker in a record's wav path "
        "(default: the built-in rule for CORPUS, if any)",
    )
    min_samples: int = min_samples_option()

    def __post_init__(self):
        check_fraction(self.valid_percent, "valid_percent")
        check_min_samples(self.min_samples)


@dataclass
class Corpus:
    name: str
    folds: dict[int, dict[str, Path]]  # k -> split -> jsonl
    emobox_map: LabelMap
    user_map: LabelMap
    audio_root: Path


def find_folds(data_dir: Path, corpus: str) -> dict[int, dict[str, Path]]:
    require_dir(data_dir, "EmoBox data/")
    cdir = data_dir / corpus
    if not cdir.is_dir():
        known = sorted(p.name for p in data_dir.iterdir() if any(p.glob("fold_*/*.jsonl")))
        known += ["track2/NAME (cross-corpus test sets)"] if (data_dir / "track2").is_dir() else []
        raise CorpusLayoutError(
            f"{data_dir} has no EmoBox corpus {corpus!r} (expected {cdir}/fold_1/"
            f"{corpus}_train_fold_1.jsonl); corpora found: {', '.join(known) or 'none'}"
        )
    folds: dict[int, dict[str, Path]] = {}
    for fold_dir in sorted(cdir.iterdir()):
        m = _FOLD.match(fold_dir.name)
        if not m or not fold_dir.is_dir():
            continue
        k = int(m[1])
        pattern = re.compile(rf"^{re.escape(corpus)}_([A-Za-z0-9]+)_fold_{k}\.jsonl$")
        splits = {mm[1]: p for p in fold_dir.iterdir() if (mm := pattern.match(p.name))}
        missing = [s for s in ("train", "test") if s not in splits]
        if missing:
            raise CorpusLayoutError(
                f"{fold_dir}: missing {', '.join(f'{corpus}_{s}_fold_{k}.jsonl' for s in missing)}"
            )
        folds[k] = dict(sorted(splits.items(), key=lambda kv: _split_rank(kv[0])))
    if not folds:
        raise CorpusLayoutError(f"{cdir}: no fold_<k>/ folder with {corpus}_train_fold_<k>.jsonl")
    return dict(sorted(folds.items()))


def _split_rank(split: str) -> tuple:
    return ({"train": 0, "valid": 1, "test": 2}.get(split, 3), split)


def resolve_audio(wav: str, root: Path, corpus: str) -> Path | None:
    """The file a record names under ``root`` (see the module docstring); None if outside."""
    rel = wav.strip().replace("\\", "/")
    candidates = [rel]
    for prefix in ("downloads/", f"downloads/{corpus}/"):
        if rel.startswith(prefix):
            candidates.append(rel[len(prefix) :])
    paths = [Path(os.path.abspath(root / c)) for c in candidates]
    paths = [p for p in paths if p == root or root in p.parents]
    if not paths:
        return None
    return next((p for p in paths if p.is_file()), paths[0])


def record_to_utterance(rec: dict, where: str, corpus: Corpus, rule) -> Utterance | Skipped:
    wav = field_text(rec, "wav", "audio")
    src = resolve_audio(wav, corpus.audio_root, corpus.name)
    shown = src if src is not None else wav
    raw = field_text(rec, "emo", "label")
    if src is None:
        return Skipped(wav, f"outside-root: {where} names a file outside --audio-root")
    segment = record_segment(rec)
    if isinstance(segment, str):
        return Skipped(shown, f"bad-row: {where}: {segment}")
    if corpus.emobox_map.mapping and raw not in corpus.emobox_map.mapping:
        return Skipped(shown, f"unknown-label: {raw!r} in {where} is not in label_map.json")
    label = corpus.user_map.apply(corpus.emobox_map.apply(raw))
    if label is None:
        return Skipped(shown, f"excluded-label: {raw!r} dropped by the label map ({where})")
    if label_problem(label):
        return Skipped(shown, f"bad-label: {where}: {label_problem(label)}")
    speaker = speaker_of(rec, wav, rule)
    extra = {"key": field_text(rec, "key"), "where": where, "segment": segment}
    return Utterance(src, label, speaker, extra)


def load_corpus(data_dir: Path, corpus: str, audio_root: Path, cfg: EmoboxConfig) -> Corpus:
    folds = find_folds(data_dir, corpus)
    require_dir(audio_root, f"audio of {corpus} (--audio-root)")
    map_path = data_dir / corpus / "label_map.json"
    emobox_map = (
        LabelMap(read_json_map(map_path), str(map_path)) if map_path.is_file() else LabelMap()
    )
    user_map = parse_label_map(cfg.label_map)
    if emobox_map.mapping:
        user_map.check_names(emobox_map.targets(), f"EmoBox {corpus} (its label_map.json)")
    return Corpus(corpus, folds, emobox_map, user_map, audio_root)


def scan(corpus: Corpus, cfg: EmoboxConfig) -> tuple[list[Utterance], list[Skipped]]:
    """One utterance per audio file, ``extra["in"]`` = the (fold, split) pairs naming it, and
    every record left out (bad row, label, path, duplicate key, conflicting label)."""
    rule = speaker_rule(corpus.name, cfg.speaker_regex)
    by_src: dict[tuple, Utterance] = {}  # (file, segment) -> its utterance
    skipped: list[Skipped] = []
    for k, files in corpus.folds.items():
        for split, path in files.items():
            records, bad = read_jsonl(path, path.relative_to(path.parents[2]).as_posix())
            skipped += bad
            seen = set()
            for rec, where in records:
                got = record_to_utterance(rec, where, corpus, rule)
                if isinstance(got, Utterance):
                    got = merge_record(by_src, got, (k, split), seen)
                if isinstance(got, Skipped):
                    skipped.append(got)
    return list(by_src.values()), skipped


def merge_record(by_src: dict, utt: Utterance, place: tuple, seen: set) -> Skipped | None:
    key, where = utt.extra["key"], utt.extra["where"]
    if key in seen:
        return Skipped(utt.src, f"duplicate: key {key} again in {where}")
    seen.add(key)
    first = by_src.setdefault((utt.src, utt.extra["segment"]), utt)
    if first.label != utt.label:
        return Skipped(
            utt.src,
            f"conflicting-label: {utt.label} in {where}, {first.label} in {first.extra['where']}",
        )
    first.extra.setdefault("in", set()).add(place)
    return None


def split_names(files: dict[str, Path]) -> list[str]:
    return ["train", "valid", "test"] + [s for s in files if s not in ("train", "valid", "test")]


def fold_splits(rows: list[Row], k: int, files: dict, cfg: EmoboxConfig, hows: dict):
    """EmoBox's train and test as they are; valid = EmoBox's where it has one, else carved
    from train (``hows[k]`` says how)."""
    rows = sorted(rows, key=lambda r: r.rel)
    given = {s: [r for r in rows if (k, s) in r.utt.extra["in"]] for s in files}
    if "valid" in given:
        hows[k] = "valid = EmoBox's own valid split"
        return {s: given[s] for s in split_names(files)}
    train, valid, how = carve_valid(given["train"], cfg.valid_percent, cfg.seed + k)
    hows[k] = f"valid carved from EmoBox's train, {how}"
    return {"train": train, "valid": valid, **{s: given[s] for s in split_names(files)[2:]}}


def corpus_notes(corpus: Corpus, built, hows: dict[int, str]) -> list[str]:
    notes = ["train and test exactly as EmoBox partitions them"]
    notes += sorted({h.split(":")[0].split(" (")[0] for h in hows.values()})
    if corpus.emobox_map.mapping:
        notes.append(f"labels mapped by {corpus.emobox_map.source}")
    if corpus.user_map.mapping:
        notes.append(f"then by --label-map {corpus.user_map.describe()}")
    with_spk = sum(1 for r in built.rows if r.utt.speaker is not None)
    notes.append(f"speakers known for {with_spk} of {len(built.rows)} files")
    for k in corpus.folds:
        both = sum(1 for r in built.rows if {(k, "train"), (k, "test")} <= r.utt.extra["in"])
        if both:
            notes.append(f"fold{k}: {both} files in both train and test (as EmoBox lists them)")
    return notes


def build(data_dir: Path, corpus_name: str, audio_root: Path, dest: Path, cfg=None) -> str:
    """Writes ``DEST/fold{k}/`` for every EmoBox fold and ``DEST/skipped.tsv``; records the
    protocol in ``DEST/manifests.json``; returns the summary text."""
    cfg = cfg or EmoboxConfig()
    data_dir, audio_root = Path(data_dir).resolve(), Path(audio_root).resolve()
    dest = Path(dest).resolve()
    corpus = load_corpus(data_dir, corpus_name, audio_root, cfg)
    utts, skipped = scan(corpus, cfg)
    preferred = [corpus.user_map.apply(c) for c in corpus.emobox_map.targets()]
    classes = class_order([c for c in preferred if c], [u.label for u in utts])
    if len(classes) < 2:
        raise CorpusLayoutError(
            f"EmoBox {corpus_name}: fewer than 2 classes with a usable record {classes}"
        )
    hows: dict[int, str] = {}
    plan = ManifestPlan(
        title=f"EmoBox {corpus_name}",
        corpus_root=audio_root,
        dest=dest,
        utterances=utts,
        skipped=skipped,
        outputs={f"fold{k}": split_names(files) for k, files in corpus.folds.items()},
        split=lambda rows: {
            f"fold{k}": fold_splits(rows, k, files, cfg, hows) for k, files in corpus.folds.items()
        },
        classes=classes,
        empty_hint=" (EmoBox's split, or valid carved from its train: try --valid-percent)",
        min_samples=cfg.min_samples,
        settings={"emobox_data": str(data_dir), "corpus": corpus_name, **asdict(cfg)},
    )
    built = build_manifests(plan)
    parts = [
        summarize(
            f"EmoBox {corpus_name} fold{k}", built.layout[f"fold{k}"], None, classes, [hows[k]]
        )
        for k in corpus.folds
    ]
    notes = corpus_notes(corpus, built, hows)
    text = f"EmoBox partitions of {corpus_name}, {len(corpus.folds)} folds: " + "; ".join(notes)
    add_to_record(dest, protocol=text + ".")
    title = f"EmoBox {corpus_name}"
    parts.append(summarize(title, {"all": built.rows}, built.skipped, classes, notes))
    return "\n".join(parts)
