"""EmoBox partitions (github.com/emo-box/EmoBox, Interspeech 2024) of one corpus.

EMOBOX_DATA_DIR is EmoBox's ``data/`` folder. For corpus C it reads every
``C/fold_{k}/C_{split}_fold_{k}.jsonl`` (``train`` and ``test`` always; ``valid`` where EmoBox
has one, e.g. MELD; extra test sets such as MER2023's ``test1``) and ``C/label_map.json`` (raw
label -> EmoBox class, e.g. IEMOCAP's exc -> Happy). Each jsonl line is a record with ``key``,
``dataset``, ``wav`` (relative to EmoBox's user folder: ``downloads/C/...``), ``emo``, and
``sample_rate``, ``length``, ``num_frame``, ``channel``, ``type``, ``task``, which are not
trusted (the audio itself is measured). Older files spell ``wav``/``emo`` as ``audio``/``label``;
both are read. Records with ``start_time``/``end_time`` (segments of one long recording, as in
PAVOQUE) are listed in skipped.tsv. Other files (``*.json``, ``C_test_fold1.jsonl``) are ignored.

A ``wav`` path is looked up under ``--audio-root`` as written, then without its leading
``downloads/``, then without ``downloads/C/``.
"""

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vesper_fairseq.corpora.audio import MIN_SAMPLES
from vesper_fairseq.corpora.emobox_speakers import speaker_of, speaker_rule
from vesper_fairseq.corpora.labelled_splits import (
    carve_valid,
    check_fraction,
    class_order,
    require_rows,
)
from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Row,
    Skipped,
    Utterance,
    require_dir,
    summarize,
    write_manifests,
    write_skipped,
)
from vesper_fairseq.corpora.store import prepare_corpus
from vesper_fairseq.io_utils import atomic_write_text
from vesper_fairseq.label_map import LabelMap, parse_label_map, read_json_map

logger = logging.getLogger(__name__)

_FOLD = re.compile(r"^fold_(\d+)$")


@dataclass
class EmoboxConfig:
    label_map: str | None = None  # applied after EmoBox's own label_map.json
    valid_percent: float = 0.2  # share of train carved as valid where EmoBox has no valid
    seed: int = 42
    speaker_regex: str | None = None
    min_samples: int = MIN_SAMPLES


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


FIELDS = (("key",), ("wav", "audio"), ("emo", "label"))


def field_text(rec: dict, *names: str) -> str:
    """The first of ``names`` the record has, stripped ('' when absent or not text)."""
    value = next((rec[n] for n in names if n in rec), None)
    return value.strip() if isinstance(value, str) else ""


def read_jsonl(path: Path, shown: str) -> tuple[list[tuple[dict, str]], list[Skipped]]:
    """(record, where) of each good line; bad lines as skipped rows naming file and line."""
    records, skipped = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{shown} line {n}"
            problem = None
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                rec, problem = None, f"not valid JSON ({exc.msg})"
            if problem is None and not isinstance(rec, dict):
                problem = "not a JSON object"
            if problem is None:
                missing = [names[0] for names in FIELDS if not field_text(rec, *names)]
                if missing:
                    problem = f"no text field {', '.join(repr(m) for m in missing)}"
            if problem:
                skipped.append(Skipped(f"{shown}:{n}", f"bad-row: {where}: {problem}"))
            else:
                records.append((rec, where))
    return records, skipped


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
    if "start_time" in rec or "end_time" in rec:
        return Skipped(shown, f"unsupported: {where} is a segment (start_time/end_time)")
    if corpus.emobox_map.mapping and raw not in corpus.emobox_map.mapping:
        return Skipped(shown, f"unknown-label: {raw!r} in {where} is not in label_map.json")
    label = corpus.user_map.apply(corpus.emobox_map.apply(raw))
    if label is None:
        return Skipped(shown, f"excluded-label: {raw!r} dropped by the label map ({where})")
    speaker = speaker_of(rec, wav, rule)
    return Utterance(src, label, speaker, {"key": field_text(rec, "key"), "where": where})


def load_corpus(data_dir: Path, corpus: str, audio_root: Path, cfg: EmoboxConfig) -> Corpus:
    folds = find_folds(data_dir, corpus)
    require_dir(audio_root, f"audio of {corpus} (--audio-root)")
    map_path = data_dir / corpus / "label_map.json"
    emobox_map = (
        LabelMap(read_json_map(map_path), str(map_path)) if map_path.is_file() else LabelMap()
    )
    return Corpus(corpus, folds, emobox_map, parse_label_map(cfg.label_map), audio_root)


def scan(corpus: Corpus, cfg: EmoboxConfig):
    """fold -> split -> utterances, and every record left out (bad row, label, path)."""
    rule = speaker_rule(corpus.name, cfg.speaker_regex)
    base = corpus.folds and next(iter(corpus.folds.values()))["train"].parents[2]
    by_fold: dict[int, dict[str, list[Utterance]]] = {}
    skipped: list[Skipped] = []
    for k, files in corpus.folds.items():
        by_fold[k] = {}
        for split, path in files.items():
            records, bad = read_jsonl(path, path.relative_to(base).as_posix())
            skipped += bad
            utts, seen = [], set()
            for rec, where in records:
                got = record_to_utterance(rec, where, corpus, rule)
                if isinstance(got, Skipped):
                    skipped.append(got)
                elif got.extra["key"] in seen:
                    skipped.append(
                        Skipped(got.src, f"duplicate: key {got.extra['key']} again in {where}")
                    )
                else:
                    seen.add(got.extra["key"])
                    utts.append(got)
            by_fold[k][split] = utts
    return by_fold, skipped


def prepare_audio(by_fold, corpus: Corpus, dest: Path, cfg: EmoboxConfig):
    """Checks/converts each distinct file once; (root, fold -> split -> rows, skipped)."""
    unique: dict[Path, Utterance] = {}
    for splits in by_fold.values():
        for utts in splits.values():
            for u in utts:
                unique.setdefault(u.src, u)
    base, rows, skipped = prepare_corpus(
        list(unique.values()),
        corpus.audio_root,
        dest,
        cfg.min_samples,
        desc=f"EmoBox {corpus.name}",
    )
    found = {r.utt.src: r for r in rows}
    fold_rows = {
        k: {
            s: [Row(u, found[u.src].rel, found[u.src].n_samples) for u in utts if u.src in found]
            for s, utts in splits.items()
        }
        for k, splits in by_fold.items()
    }
    return base, fold_rows, skipped


def fold_splits(rows: dict[str, list[Row]], k: int, cfg: EmoboxConfig):
    """EmoBox's train and test as they are; valid = EmoBox's where it has one, else carved."""
    if "valid" in rows:
        return rows, "valid = EmoBox's own valid split"
    train, valid, how = carve_valid(rows["train"], cfg.valid_percent, cfg.seed + k)
    splits = {"train": train, "valid": valid, **{s: r for s, r in rows.items() if s != "train"}}
    return splits, f"valid carved from EmoBox's train, {how}"


def check_stale_folds(dest: Path, folds: dict[int, dict[str, Path]]) -> None:
    wanted = {f"fold{k}" for k in folds}
    stale = sorted(p.name for p in dest.glob("fold*") if p.is_dir() and p.name not in wanted)
    if stale:
        raise CorpusLayoutError(
            f"{dest} holds {', '.join(stale)} from an earlier run, but this corpus has "
            f"{len(folds)} folds: remove them or choose another --dest"
        )


def corpus_notes(corpus: Corpus, rows: list[Row], fold_rows: dict, hows: list[str]) -> list[str]:
    notes = ["train and test exactly as EmoBox partitions them"]
    notes += sorted(set(hows))
    if corpus.emobox_map.mapping:
        notes.append(f"labels mapped by {corpus.emobox_map.source}")
    if corpus.user_map.mapping:
        notes.append(f"then by --label-map {corpus.user_map.describe()}")
    with_spk = sum(1 for r in rows if r.utt.speaker is not None)
    notes.append(f"speakers known for {with_spk} of {len(rows)} files")
    for k, splits in fold_rows.items():
        keys = [{r.utt.extra["key"] for r in splits[s]} for s in ("train", "test")]
        if keys[0] & keys[1]:
            notes.append(
                f"fold{k}: {len(keys[0] & keys[1])} keys in both train and test (EmoBox's)"
            )
    return notes


def build(data_dir: Path, corpus_name: str, audio_root: Path, dest: Path, cfg=None) -> str:
    """Writes ``DEST/fold{k}/`` for every EmoBox fold, ``DEST/skipped.tsv`` and
    ``DEST/protocol.txt``; returns the summary text."""
    cfg = cfg or EmoboxConfig()
    check_fraction("--valid-percent", cfg.valid_percent)
    data_dir, audio_root = Path(data_dir).resolve(), Path(audio_root).resolve()
    dest = Path(dest).resolve()
    corpus = load_corpus(data_dir, corpus_name, audio_root, cfg)
    check_stale_folds(dest, corpus.folds)
    by_fold, skipped = scan(corpus, cfg)
    labels = {u.label for splits in by_fold.values() for utts in splits.values() for u in utts}
    if len(labels) < 2:
        raise CorpusLayoutError(
            f"EmoBox {corpus_name}: fewer than 2 classes with a usable record {sorted(labels)}"
        )
    base, fold_rows, bad = prepare_audio(by_fold, corpus, dest, cfg)
    skipped += bad
    rows = list(
        {r.utt.src: r for s in fold_rows.values() for rr in s.values() for r in rr}.values()
    )
    preferred = [corpus.user_map.apply(c) for c in corpus.emobox_map.targets()]
    classes = class_order([c for c in preferred if c], rows)
    parts, hows = [], []
    for k, split_rows in fold_rows.items():
        splits, how = fold_splits(split_rows, k, cfg)
        require_rows(splits, f"EmoBox {corpus_name} fold_{k}")
        write_manifests(dest / f"fold{k}", base, splits, classes)
        parts.append(summarize(f"EmoBox {corpus_name} fold{k}", splits, None, classes, [how]))
        hows.append(how.split(":")[0].split(" (")[0])
    write_skipped(dest, skipped, audio_root)
    notes = corpus_notes(corpus, rows, fold_rows, hows)
    text = f"EmoBox partitions of {corpus_name}, {len(fold_rows)} folds: " + "; ".join(notes)
    atomic_write_text(dest / "protocol.txt", text + ".\n")
    parts.append(summarize(f"EmoBox {corpus_name}", {"all": rows}, skipped, classes, notes))
    return "\n".join(parts)
