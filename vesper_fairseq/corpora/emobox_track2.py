"""EmoBox's cross-corpus track (track 2): its fully balanced test sets, one manifest folder each.

EmoBox's ``data/track2/`` holds ``<NAME>_selected_balenced.jsonl`` (IEMOCAP, MELD, RAVDESS,
SAVEE; the spelling is EmoBox's, ``balanced`` is read too): one record per line with
``wav_filename`` (relative to the corpus' audio, e.g. ``happy/Ses02F_impro03_F019.wav`` or
``Actor_15/03-01-03-01-01-02-15.wav``), ``label`` (angry, happy, neutral, sad) and ``speaker``.
There are no folds and no training data: a model trained on another corpus is scored on it
(``vesper-evaluate --label-map``).

CORPUS ``track2/NAME`` writes ``DEST/test.{tsv,emo,spk}``, ``dict.emo.txt`` and
``skipped.tsv``. A ``wav_filename`` is looked up under ``--audio-root`` as written, else by its
file name anywhere under ``--audio-root`` when exactly one file has that name (the original
IEMOCAP release holds ``Ses02F_impro03_F019.wav`` in ``Session2/sentences/wav/...``).
"""

import os
import re
from dataclasses import asdict
from pathlib import Path

from vesper_fairseq.corpora.emobox_records import field_text, read_jsonl
from vesper_fairseq.corpora.emobox_speakers import speaker_of
from vesper_fairseq.corpora.labelled_splits import class_order
from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Skipped,
    Utterance,
    require_dir,
    summarize,
)
from vesper_fairseq.corpora.pipeline import ManifestPlan, add_to_record, build_manifests
from vesper_fairseq.label_map import label_problem, parse_label_map

TRACK = "track2"
FIELDS = (("wav_filename",), ("label",))
_SET = re.compile(r"^(.+)_selected_bal[ae]nced\.jsonl$")


def is_track2(corpus: str) -> bool:
    return corpus.replace("\\", "/").split("/")[0] == TRACK


def find_set(data_dir: Path, corpus: str) -> tuple[str, Path]:
    """(NAME, its jsonl) for CORPUS ``track2/NAME`` (NAME in any case)."""
    require_dir(data_dir, "EmoBox data/")
    folder = data_dir / TRACK
    sets = {}
    if folder.is_dir():
        sets = {m[1]: p for p in sorted(folder.iterdir()) if (m := _SET.match(p.name))}
    wanted = corpus.replace("\\", "/").partition("/")[2].strip("/")
    found = [name for name in sets if name.lower() == wanted.lower()]
    if not found:
        listed = ", ".join(f"{TRACK}/{n}" for n in sets) or "none"
        raise CorpusLayoutError(
            f"{folder} has no test set {wanted or '(none named)'!r} (expected "
            f"{folder}/<NAME>_selected_balenced.jsonl; CORPUS track2/NAME); sets found: {listed}"
        )
    return found[0], sets[found[0]]


class FileNames:
    """Files under a root by file name, listed once, on the first look-up."""

    def __init__(self, root: Path):
        self.root, self.index = root, None

    def named(self, name: str) -> list[Path]:
        if self.index is None:
            self.index = {}
            for folder, _, files in os.walk(self.root):
                for f in files:
                    self.index.setdefault(f, []).append(Path(folder) / f)
        return sorted(self.index.get(name, []))


def resolve(wav: str, root: Path, names: FileNames) -> Path | str:
    """The file a record names (see the module docstring), or why none is taken."""
    rel = wav.strip().replace("\\", "/")
    path = Path(os.path.abspath(root / rel))
    if root not in path.parents:
        return f"outside-root: {wav!r} is outside --audio-root"
    if path.is_file():
        return path
    same = names.named(path.name)
    if len(same) > 1:
        shown = ", ".join(p.relative_to(root).as_posix() for p in same[:3])
        return (
            f"ambiguous: {wav} is not under --audio-root as written, and {len(same)} files "
            f"are named {path.name} ({shown})"
        )
    return same[0] if same else path  # an absent file: reported as missing


def scan(path: Path, shown: str, root: Path) -> tuple[list[Utterance], list[Skipped]]:
    records, skipped = read_jsonl(path, shown, FIELDS)
    names, seen = FileNames(root), {}
    utts = []
    for rec, where in records:
        wav, label = field_text(rec, "wav_filename"), field_text(rec, "label")
        src = resolve(wav, root, names)
        if isinstance(src, str):
            skipped.append(Skipped(wav, src))
        elif label_problem(label):
            skipped.append(Skipped(src, f"bad-label: {where}: {label_problem(label)}"))
        elif src in seen:
            skipped.append(Skipped(src, f"duplicate: {where} names the file of {seen[src]}"))
        else:
            seen[src] = where
            utts.append(Utterance(src, label, speaker_of(rec, wav, None), {"where": where}))
    return utts, skipped


def build(data_dir: Path, corpus: str, audio_root: Path, dest: Path, cfg) -> str:
    """DEST/test.{tsv,emo,spk} + dict.emo.txt + skipped.tsv of one track-2 test set; ``cfg``
    is the EmoBox builder's (its label map and min_samples apply)."""
    data_dir, audio_root = Path(data_dir).resolve(), Path(audio_root).resolve()
    name, path = find_set(data_dir, corpus)
    require_dir(audio_root, f"audio of EmoBox track 2 {name} (--audio-root)")
    utts, skipped = scan(path, f"{TRACK}/{path.name}", audio_root)
    classes = class_order([], [u.label for u in utts])
    title = f"EmoBox track2 {name}"
    plan = ManifestPlan(
        title=title,
        corpus_root=audio_root,
        dest=Path(dest).resolve(),
        utterances=utts,
        skipped=skipped,
        outputs={"": ["test"]},
        split=lambda rows: {"": {"test": rows}},
        classes=classes,
        min_samples=cfg.min_samples,
        settings={"emobox_data": str(data_dir), "corpus": f"{TRACK}/{name}", **asdict(cfg)},
        label_map=parse_label_map(cfg.label_map),
    )
    built = build_manifests(plan)
    notes = [
        f"EmoBox's cross-corpus test set of {name}, every usable record (test only: score a "
        "model trained elsewhere with vesper-evaluate --label-map)"
    ]
    add_to_record(dest, protocol=f"{title}: " + notes[0] + ".")
    return summarize(title, built.layout[""], built.skipped, built.classes, notes)
