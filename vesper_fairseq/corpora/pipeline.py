"""The steps every manifest builder shares, in one place.

A builder scans its corpus into :class:`Utterance` objects (and the files it already rejects
as :class:`Skipped`), then hands a :class:`ManifestPlan` to :func:`build_manifests`, which

1. refuses, before any work, a DEST holding manifest files that neither this run writes nor an
   earlier run of these scripts recorded (an earlier run's own leftovers are removed);
2. checks and converts the audio (:func:`prepare_corpus`), skipping unusable files and names a
   fairseq manifest cannot hold;
3. splits the kept rows with the plan's ``split`` function and fails with one line when the
   run has no usable row at all, or none for a split it must write;
4. writes every ``{folder}/{split}.tsv`` (+ ``.emo``, ``.spk``, ``dict.emo.txt``),
   ``skipped.tsv`` and ``manifests.json`` (what was written, from what, with which settings).
"""

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from vesper_fairseq.corpora.audio import MIN_SAMPLES
from vesper_fairseq.corpora.audio_cache import CACHE_DIRNAME, cache_problem, prepare_corpus
from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Row,
    Skipped,
    Utterance,
    printable,
    skip_category,
    write_manifests,
    write_skipped,
)
from vesper_fairseq.io_utils import exclusive_lock, write_json_atomic
from vesper_fairseq.label_map import LabelMap

logger = logging.getLogger(__name__)

RECORD_NAME = "manifests.json"
SKIPPED_NAME = "skipped.tsv"
LOCK_NAME = ".manifests.lock"  # held while a run writes DEST
SPLIT_SUFFIXES = (".tsv", ".emo", ".spk")
DICT_NAME = "dict.emo.txt"

# folder under DEST ("" for DEST itself) -> split name -> rows
Layout = dict[str, dict[str, list[Row]]]


@dataclass
class ManifestPlan:
    """What a builder asks :func:`build_manifests` to do."""

    title: str  # names the corpus in progress bars and errors
    corpus_root: Path
    dest: Path
    utterances: list[Utterance]
    skipped: list[Skipped]  # files the scan already rejected
    outputs: dict[str, list[str]]  # folder -> the splits written there
    split: Callable[[list[Row]], Layout]  # kept rows -> the same folders and splits
    classes: list[str] | None = None  # labelled corpora: {split}.emo and dict.emo.txt
    may_be_empty: tuple[str, ...] = ()  # split names allowed to have no row
    empty_hint: str = ""  # added to the error for a split without rows
    min_samples: int = MIN_SAMPLES
    settings: dict = field(default_factory=dict)  # recorded in manifests.json
    label_map: LabelMap | None = None  # renames / merges / drops ``classes`` (--label-map)


@dataclass
class BuiltManifests:
    root: Path  # the manifests' root line
    rows: list[Row]
    skipped: list[Skipped]
    layout: Layout
    classes: list[str] | None = None  # after the plan's label map


def build_manifests(plan: ManifestPlan) -> BuiltManifests:
    """One run at a time per DEST (a second stops at once, naming the first); nothing is
    written, not even the lock, before DEST is known to lie outside the corpus."""
    plan = with_label_map(plan)
    dest = Path(plan.dest).resolve()
    problem = cache_problem(Path(plan.corpus_root).resolve(), dest / CACHE_DIRNAME)
    if problem:
        raise ValueError(problem)
    with exclusive_lock(dest / LOCK_NAME, f"the manifests in {dest}"):
        return _build_manifests(plan, dest)


def _build_manifests(plan: ManifestPlan, dest: Path) -> BuiltManifests:
    planned = planned_files(plan)
    leftovers = earlier_outputs(dest, planned)
    if not plan.utterances:
        raise CorpusLayoutError(nothing_usable(plan, plan.skipped, 0))
    root, rows, bad = prepare_corpus(
        plan.utterances, plan.corpus_root, dest, plan.min_samples, desc=plan.title
    )
    skipped = plan.skipped + bad
    if not rows:
        raise CorpusLayoutError(nothing_usable(plan, skipped, len(plan.utterances)))
    layout = plan.split(rows)
    check_layout(plan, layout, skipped, len(rows))
    for rel in leftovers:
        remove_output(dest, rel)
    for folder, splits in layout.items():
        write_manifests(dest / folder, root, splits, plan.classes)
    write_skipped(dest, skipped, plan.corpus_root)
    write_json_atomic(dest / RECORD_NAME, record(plan, root, planned))
    return BuiltManifests(root, rows, skipped, layout, plan.classes)


def with_label_map(plan: ManifestPlan) -> ManifestPlan:
    """The plan with its label map applied: utterances relabelled, dropped classes skipped."""
    lmap = plan.label_map
    if lmap is None or not lmap.mapping:
        return plan
    unknown = [k for k in lmap.mapping if plan.classes is None or k not in plan.classes]
    if unknown:
        raise ValueError(
            f"{plan.title}: the label map names {', '.join(unknown)}, not among its classes "
            f"({', '.join(plan.classes or [])})"
        )
    classes = list(dict.fromkeys(t for t in map(lmap.apply, plan.classes) if t is not None))
    if len(classes) < 2:
        raise ValueError(f"{plan.title}: the label map leaves fewer than 2 classes {classes}")
    utts, skipped = [], list(plan.skipped)
    for utt in plan.utterances:
        label = lmap.apply(utt.label)
        if label is None:
            skipped.append(
                Skipped(utt.src, f"excluded-label: {utt.label} dropped by the label map")
            )
        else:
            utts.append(replace(utt, label=label))
    settings = {**plan.settings, "label_map": lmap.mapping}
    return replace(plan, utterances=utts, skipped=skipped, classes=classes, settings=settings)


def planned_files(plan: ManifestPlan) -> set[str]:
    """Every DEST-relative file this plan may write (``.spk`` only where speakers exist)."""
    files = {SKIPPED_NAME}
    for folder, splits in plan.outputs.items():
        prefix = f"{folder}/" if folder else ""
        files.add(prefix + DICT_NAME)
        files.update(prefix + split + suffix for split in splits for suffix in SPLIT_SUFFIXES)
    return files


def manifest_files_in(dest: Path) -> set[str]:
    """Manifest, label and dictionary files in DEST and its sub-folders (not the audio cache)."""
    found = set()
    for folder in [dest, *(d for d in sorted(dest.glob("*/")) if d.name != CACHE_DIRNAME)]:
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix in SPLIT_SUFFIXES or path.name == DICT_NAME:
                found.add(path.relative_to(dest).as_posix())
    return found


def earlier_outputs(dest: Path, planned: set[str]) -> list[str]:
    """Files of an earlier run that this one will not rewrite; refuses files it cannot place."""
    if not dest.is_dir():
        return []
    extra = manifest_files_in(dest) - planned
    recorded = set(read_record(dest).get("files", []))
    unknown = sorted(extra - recorded)
    if unknown:
        shown = ", ".join(printable(u) for u in unknown[:6])
        more = f" and {len(unknown) - 6} more" if len(unknown) > 6 else ""
        raise CorpusLayoutError(
            f"{dest} already holds {shown}{more}, which this run would not replace (left by "
            "another corpus or other settings): remove them or choose another --dest"
        )
    return sorted(extra)


def read_record(dest: Path) -> dict:
    try:
        data = json.loads((dest / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remove_output(dest: Path, rel: str) -> None:
    path = dest / rel
    path.unlink(missing_ok=True)
    logger.info("removed %s, left by an earlier run with other settings", path)
    if path.parent != dest and not any(path.parent.iterdir()):
        path.parent.rmdir()


def record(plan: ManifestPlan, root: Path, planned: set[str]) -> dict:
    return {
        "corpus": plan.title,
        "corpus_root": str(Path(plan.corpus_root).resolve()),
        "manifest_root": str(root),
        "settings": json.loads(json.dumps(plan.settings, default=str)),
        "files": sorted(planned),
    }


def add_to_record(dest: Path, **fields) -> None:
    """Adds what a builder learnt while splitting (e.g. its ``protocol``) to manifests.json."""
    data = read_record(Path(dest))
    data.update(fields)
    write_json_atomic(Path(dest) / RECORD_NAME, data)


def reasons(skipped: list[Skipped]) -> str:
    counts = Counter(skip_category(s.reason) for s in skipped)
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))


def nothing_usable(plan: ManifestPlan, skipped: list[Skipped], n_checked: int) -> str:
    where = printable(str(plan.corpus_root))
    if not skipped:
        return f"{plan.title}: {where} holds no file to put in a manifest; no manifest written"
    first = skipped[0]
    return (
        f"{plan.title}: none of the {n_checked + len(plan.skipped)} files found in {where} is "
        f"usable ({reasons(skipped)}; e.g. {printable(str(first.path))}: "
        f"{' '.join(first.reason.split())}); no manifest written"
    )


def check_layout(plan: ManifestPlan, layout: Layout, skipped: list[Skipped], kept: int) -> None:
    """The split function's folders are the planned ones and every required split has rows."""
    got = {folder: list(splits) for folder, splits in layout.items()}
    if got != plan.outputs:
        raise RuntimeError(f"{plan.title}: split gave {got}, the plan says {plan.outputs}")
    for folder, splits in layout.items():
        for split, rows in splits.items():
            if rows or split in plan.may_be_empty:
                continue
            name = f"{folder}/{split}.tsv" if folder else f"{split}.tsv"
            detail = f"; skipped: {reasons(skipped)}" if skipped else ""
            raise CorpusLayoutError(
                f"{plan.title}: no usable row for {name} ({kept} files kept in all{detail}); "
                f"no manifest written{plan.empty_hint}"
            )
