"""fairseq manifests, label files, label dictionary, skipped list and the printed summary.

Layout of a manifest folder::

    {split}.tsv       line 1: absolute root; then ``relative/path<TAB>num_samples``
    {split}.emo       one label per tsv row (classification corpora)
    {split}.spk       one speaker per tsv row (corpora with speakers)
    dict.emo.txt      fairseq Dictionary: ``label count`` per line, classes in the corpus'
                      fixed order (same ids in every fold), counts from the train split
    skipped.tsv       ``path<TAB>reason`` of every file left out (header line first)

fairseq's FileAudioDataset reads a row as ``line.strip().split("\t")`` and hands the joined
path to ``parse_path``, which reads ``file:offset:length`` as a slice of a zip unless the path
ends in one of its audio/feature extensions (case-sensitive). Names that cannot survive this
are skipped with the reason ``NOT_REPRESENTABLE`` (see :func:`manifest_name_problem`).
"""

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from vesper_fairseq.io_utils import atomic_write_text
from vesper_fairseq.modules.wavlm_config import SAMPLE_RATE

logger = logging.getLogger(__name__)

NOT_REPRESENTABLE = "name not representable in a fairseq manifest"
# Characters that end a line for Python's text files or str.splitlines (all our readers).
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
# fairseq.data.audio.audio_utils.FEATURE_OR_SF_AUDIO_FILE_EXTENSIONS: any other path is split
# at ':' into file, offset, length.
FAIRSEQ_PLAIN_SUFFIXES = (".npy", ".wav", ".flac", ".ogg")


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if "\t" in text:
        return "contains a tab"
    breaks = sorted({c for c in text if c in LINE_BREAKS})
    if breaks:
        return f"contains a line break ({', '.join(ascii(c) for c in breaks)})"
    return None


def manifest_name_problem(rel: str, root: str | None = None) -> str | None:
    """Why fairseq could not read ``rel`` back from a manifest row (with ``root``), or None."""
    problem = _text_problem(rel)
    if problem:
        return problem
    if rel[:1].isspace():
        return "starts with whitespace (fairseq strips it)"
    return zip_slice_problem(os.path.join(root, rel)) if root is not None else None


def zip_slice_problem(path: str) -> str | None:
    """fairseq's parse_path reads a path with ':' not ending in its suffixes as a zip slice."""
    if ":" in path and not path.endswith(FAIRSEQ_PLAIN_SUFFIXES):
        return (
            "contains ':' and does not end in " + "/".join(FAIRSEQ_PLAIN_SUFFIXES)
            + " (fairseq would read it as zip:offset:length)"
        )  # fmt: skip
    return None


def root_line_problem(root: str) -> str | None:
    """Why ``root`` cannot be the first line of a manifest (read with ``.strip()``), or None."""
    problem = _text_problem(root)
    if problem:
        return problem
    if root != root.strip():
        return "begins or ends with whitespace (fairseq strips it)"
    return None


def printable(text: str) -> str:
    """``text`` as it can be written on one line of a tsv: escaped (ascii()) when needed."""
    return ascii(text) if _text_problem(text) else text


@dataclass
class Utterance:
    """One labelled (or unlabelled) audio file as the corpus describes it."""

    src: Path
    label: str | None = None
    speaker: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Row:
    """An utterance that passed the audio checks, with its path relative to the tsv root."""

    utt: Utterance
    rel: str
    n_samples: int


@dataclass
class Skipped:
    path: Path | str
    reason: str


class CorpusLayoutError(ValueError):
    """ROOT does not look like the corpus the script expects."""


def require_dir(root: Path, corpus: str) -> None:
    if not Path(root).is_dir():
        raise CorpusLayoutError(f"{root} is not a folder (expected the {corpus} corpus root)")


def _clean(value: str, what: str) -> str:
    value = value.strip()
    if not value or any(c in value for c in "\t\n\r"):
        raise ValueError(f"{what} {value!r} cannot be written on one manifest line")
    return value


def write_split(
    dest: Path, split: str, root: Path, rows: list[Row], labels: bool, speakers: bool
) -> None:
    """Writes ``{split}.tsv`` and, when asked, ``{split}.emo`` / ``{split}.spk`` (same rows)."""
    lines = [str(Path(root).resolve())] + [f"{r.rel}\t{r.n_samples}" for r in rows]
    atomic_write_text(Path(dest) / f"{split}.tsv", "\n".join(lines) + "\n")
    for ext, wanted, value in (
        ("emo", labels, lambda r: r.utt.label),
        ("spk", speakers, lambda r: r.utt.speaker),
    ):
        path = Path(dest) / f"{split}.{ext}"
        if wanted:
            atomic_write_text(path, "".join(_clean(value(r), ext) + "\n" for r in rows))
        elif path.exists():  # left by an earlier run with other options
            path.unlink()


def write_dict(dest: Path, classes: list[str], rows: list[Row]) -> None:
    """``dict.emo.txt`` with the classes in the given order and their counts in ``rows``."""
    counts = Counter(r.utt.label for r in rows)
    atomic_write_text(Path(dest) / "dict.emo.txt", "".join(f"{c} {counts[c]}\n" for c in classes))


def write_skipped(dest: Path, skipped: list[Skipped], corpus_root: Path) -> None:
    root = Path(corpus_root).resolve()
    lines = ["path\treason"]
    for s in sorted(skipped, key=lambda s: (_display(s.path, root), s.reason)):
        reason = " ".join(s.reason.split()).encode("utf-8", "backslashreplace").decode()
        lines.append(f"{_display(s.path, root)}\t{reason}")
    atomic_write_text(Path(dest) / "skipped.tsv", "\n".join(lines) + "\n")


def _display(path: Path | str, root: Path) -> str:
    """Paths inside the corpus relative to its root; strings (csv entries) as they are."""
    if isinstance(path, str):
        return printable(path)
    try:
        return printable(Path(os.path.abspath(path)).relative_to(root).as_posix())
    except ValueError:
        return printable(str(path))


def write_manifests(
    dest: Path,
    root: Path,
    splits: dict[str, list[Row]],
    classes: list[str] | None = None,
    dict_split: str = "train",
) -> None:
    """Writes every split of one manifest folder (rows sorted by path) and the label dict.

    Labels are written when ``classes`` is given, speakers when every row has one.
    """
    Path(dest).mkdir(parents=True, exist_ok=True)
    everything = [r for rows in splits.values() for r in rows]
    speakers = bool(everything) and all(r.utt.speaker is not None for r in everything)
    for split, rows in splits.items():
        write_split(dest, split, root, sort_rows(rows), classes is not None, speakers)
    if classes is not None:  # counts of dict_split; of every split in a test-only folder
        write_dict(dest, classes, splits[dict_split] if dict_split in splits else everything)
    elif (Path(dest) / "dict.emo.txt").exists():
        (Path(dest) / "dict.emo.txt").unlink()


def sort_rows(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: r.rel)


def skip_category(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


def class_warnings(splits: dict[str, list[Row]], classes: list[str] | None) -> list[str]:
    """What a user should hear about the classes: one with no training row, labels that differ
    only in case or spacing (separate classes)."""
    if not classes:
        return []
    warnings = []
    if "train" in splits:
        trained = {r.utt.label for r in splits["train"]}
        missing = [c for c in classes if c not in trained]
        if missing:
            warnings.append(f"no train row for class {', '.join(missing)}: it cannot be learned")
    twins = {}
    for c in classes:
        twins.setdefault(" ".join(c.casefold().split()), []).append(c)
    for names in twins.values():
        if len(names) > 1:
            shown = ", ".join(repr(n) for n in names)
            warnings.append(f"labels {shown} differ only in case or spacing: separate classes")
    return warnings


def summarize(
    title: str,
    splits: dict[str, list[Row]],
    skipped: list[Skipped] | None,
    classes: list[str] | None = None,
    notes: list[str] = (),
) -> str:
    """Counts per split and class, hours of audio, skipped files per reason (unless None)."""
    lines = [f"== {title} =="]
    for split, rows in splits.items():
        hours = sum(r.n_samples for r in rows) / SAMPLE_RATE / 3600
        line = f"{split:>12}: {len(rows):6d} files, {hours:8.2f} h"
        if classes is not None:
            counts = Counter(r.utt.label for r in rows)
            line += "  | " + " ".join(f"{c}={counts[c]}" for c in classes)
        speakers = {r.utt.speaker for r in rows if r.utt.speaker is not None}
        if speakers:
            line += f"  | {len(speakers)} speaker{'s' if len(speakers) > 1 else ''}"
        lines.append(line)
    notes = [*class_warnings(splits, classes), *notes]
    if skipped is not None:
        by_reason = Counter(skip_category(s.reason) for s in skipped)
        detail = ", ".join(f"{k}={v}" for k, v in sorted(by_reason.items()))
        lines.append(f"     skipped: {len(skipped):6d} files" + (f" ({detail})" if detail else ""))
    lines.extend(f"        note: {n}" for n in notes)
    return "\n".join(lines)
