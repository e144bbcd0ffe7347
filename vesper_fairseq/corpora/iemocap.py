"""IEMOCAP (release as shipped: ``IEMOCAP_full_release/Session{1..5}/...``).

Labels come from ``Session{n}/dialog/EmoEvaluation/{dialog}.txt``, whose utterance lines read
``[START - END]<TAB>TURN_NAME<TAB>EMOTION<TAB>[V, A, D]`` (the other lines are the annotators'
detail). Audio is ``Session{n}/sentences/wav/{dialog}/{TURN_NAME}.wav``. The speaker of
``Ses01F_impro01_M003`` is the male actor of session 1 (``Ses01M``): the letter that starts the
last underscore-separated field; the letter after ``Ses01`` only says who wore the markers.

4 classes (ang, hap with exc merged in, neu, sad) give the standard 5531 utterances; the
5-class variant keeps exc apart. Folds are leave-one-session-out.
"""

import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from vesper_fairseq.corpora.manifest import (
    CorpusLayoutError,
    Row,
    Skipped,
    Utterance,
    require_dir,
    summarize,
)
from vesper_fairseq.corpora.options import (
    label_map_option,
    min_samples_option,
    option,
    seed_option,
    share_option,
)
from vesper_fairseq.corpora.pipeline import ManifestPlan, build_manifests
from vesper_fairseq.corpora.splits import check_fraction, stratified_holdout
from vesper_fairseq.label_map import parse_label_map

logger = logging.getLogger(__name__)

SESSIONS = (1, 2, 3, 4, 5)
CLASSES_4 = ["ang", "hap", "neu", "sad"]
CLASSES_5 = ["ang", "exc", "hap", "neu", "sad"]

_EVAL_LINE = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<turn>Ses\d\d[FM]_\S+)"
    r"\s+(?P<emo>[a-z]{3})\s+\[[^\]]*\]\s*$"
)
_TIMED_LINE = re.compile(r"^\[\s*[\d.]+\s*-")  # starts like an utterance line
EVAL_FORMAT = "'[START - END]<TAB>TURN_NAME<TAB>EMOTION<TAB>[V, A, D]'"
_TURN = re.compile(r"^Ses(?P<session>\d\d)[FM]_(?P<dialog_rest>.+)_(?P<gender>[FM])\d+$")


@dataclass
class IemocapConfig:
    five_class: bool = option(False, "keep exc apart from hap")
    improvised_only: bool = option(False, "improvised dialogues only")
    valid: str = option(
        "split",
        "split: stratified share of the 4 training sessions; test: valid = test (authors)",
        choices=("split", "test"),
    )
    valid_percent: float = share_option(0.2, "share of the training sessions held out as valid")
    seed: int = seed_option(42)
    min_samples: int = min_samples_option()
    label_map: str | None = label_map_option()

    def __post_init__(self):
        if self.valid not in ("split", "test"):
            raise ValueError(f"valid must be 'split' or 'test', got {self.valid!r}")
        check_fraction(self.valid_percent, "valid_percent")

    @property
    def classes(self) -> list[str]:
        return CLASSES_5 if self.five_class else CLASSES_4


def check_root(root: Path) -> None:
    require_dir(root, "IEMOCAP")
    wanted = [
        f"Session{n}/{sub}" for n in SESSIONS for sub in ("dialog/EmoEvaluation", "sentences/wav")
    ]
    missing = [w for w in wanted if not (root / w).is_dir()]
    if missing:
        hint = ""
        if (root / "IEMOCAP_full_release").is_dir():
            hint = f" (try ROOT={root / 'IEMOCAP_full_release'})"
        raise CorpusLayoutError(
            f"{root} does not look like IEMOCAP: expected Session1..Session5, each with "
            f"dialog/EmoEvaluation/*.txt and sentences/wav/; missing {', '.join(missing)}{hint}"
        )


def parse_evaluation(path: Path) -> tuple[list[tuple[str, str]], list[int]]:
    """(turn name, emotion code) of every utterance line of one EmoEvaluation file, and the
    numbers of the lines that start like an utterance line but do not follow its format."""
    out, bad = [], []
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), start=1):
        m = _EVAL_LINE.match(line.strip())
        if m:
            out.append((m["turn"], m["emo"]))
        elif _TIMED_LINE.match(line.strip()):
            bad.append(number)
    return out, bad


def find_any_case(path: Path) -> Path | None:
    """``path``, or the one file of its folder whose name differs only in case (``.WAV``)."""
    if path.is_file():
        return path
    if not path.parent.is_dir():
        return None
    hits = [p for p in path.parent.iterdir() if p.name.lower() == path.name.lower()]
    return hits[0] if len(hits) == 1 and hits[0].is_file() else None


def speaker_of(turn: str) -> str:
    m = _TURN.match(turn)
    if m is None:
        raise ValueError(f"unexpected IEMOCAP turn name {turn!r}")
    return f"Ses{m['session']}{m['gender']}"


def scan(root: Path, cfg: IemocapConfig) -> tuple[list[Utterance], list[Skipped]]:
    """Utterances with a kept label and existing wav, and everything else as skipped."""
    merge = {} if cfg.five_class else {"exc": "hap"}
    utts, skipped, seen = [], [], set()
    for session in SESSIONS:
        sdir = root / f"Session{session}"
        evals = sorted(
            p for p in (sdir / "dialog" / "EmoEvaluation").glob("*.txt") if p.name[0] not in "._"
        )
        for eval_path in evals:
            where = f"{eval_path.relative_to(root).as_posix()}"
            entries, bad = parse_evaluation(eval_path)
            for number in bad:
                reason = f"bad-line: {where} line {number}: expected {EVAL_FORMAT}"
                skipped.append(Skipped(f"{where}:{number}", reason))
            for turn, emo in entries:
                dialog = turn.rsplit("_", 1)[0]
                wav = sdir / "sentences" / "wav" / dialog / f"{turn}.wav"
                wav = find_any_case(wav) or wav
                label = merge.get(emo, emo)
                if turn in seen:
                    skipped.append(Skipped(wav, f"duplicate: {turn} labelled again in {where}"))
                    continue
                seen.add(turn)
                if _TURN.match(turn) is None or int(turn[3:5]) != session:
                    skipped.append(Skipped(wav, f"bad-name: turn {turn} in {where}"))
                elif label not in cfg.classes:
                    skipped.append(Skipped(wav, f"excluded-label: {emo}"))
                elif cfg.improvised_only and "_impro" not in dialog:
                    skipped.append(Skipped(wav, "excluded-scripted: improvised-only run"))
                elif not wav.is_file():
                    skipped.append(Skipped(wav, f"missing: labelled in {where}, no wav file"))
                else:
                    extra = {"session": session, "turn": turn}
                    utts.append(Utterance(wav, label, speaker_of(turn), extra))
    return utts, skipped


def fold_splits(rows: list[Row], fold: int, cfg: IemocapConfig) -> dict[str, list[Row]]:
    """Leave-one-session-out: test = session ``fold``; valid from the other four (or = test)."""
    test = [r for r in rows if r.utt.extra["session"] == fold]
    rest = sorted((r for r in rows if r.utt.extra["session"] != fold), key=lambda r: r.rel)
    if cfg.valid == "test":
        return {"train": rest, "valid": list(test), "test": test}
    if cfg.valid != "split":
        raise ValueError(f"valid must be 'split' or 'test', got {cfg.valid!r}")
    held = stratified_holdout([r.utt.label for r in rest], cfg.valid_percent, cfg.seed + fold)
    train = [r for r, h in zip(rest, held) if not h]
    valid = [r for r, h in zip(rest, held) if h]
    return {"train": train, "valid": valid, "test": test}


def build(root: Path, dest: Path, cfg: IemocapConfig | None = None) -> str:
    """Writes ``DEST/fold{1..5}/`` and ``DEST/skipped.tsv``; returns the summary text."""
    cfg = cfg or IemocapConfig()
    root, dest = Path(root).resolve(), Path(dest).resolve()
    check_root(root)
    utts, skipped = scan(root, cfg)
    plan = ManifestPlan(
        title="IEMOCAP",
        corpus_root=root,
        dest=dest,
        utterances=utts,
        skipped=skipped,
        outputs={f"fold{fold}": ["train", "valid", "test"] for fold in SESSIONS},
        split=lambda rows: {f"fold{f}": fold_splits(rows, f, cfg) for f in SESSIONS},
        classes=cfg.classes,
        min_samples=cfg.min_samples,
        settings=asdict(cfg),
        label_map=parse_label_map(cfg.label_map),
    )
    built = build_manifests(plan)
    parts = [
        summarize(f"IEMOCAP fold{fold} (test = Session{fold})", splits, None, built.classes)
        for fold, splits in zip(SESSIONS, built.layout.values())
    ]
    counts = Counter(r.utt.label for r in built.rows)
    notes = [
        f"{len(built.rows)} utterances: " + " ".join(f"{c}={counts[c]}" for c in built.classes),
        (
            "valid = test (the authors' protocol; optimistic)"
            if cfg.valid == "test"
            else f"valid = stratified {cfg.valid_percent:.0%} of the 4 training sessions"
        ),
    ]
    if cfg.improvised_only:
        notes.append("improvised dialogues only")
    everything = {"all": built.rows}
    parts.append(summarize("IEMOCAP all sessions", everything, built.skipped, built.classes, notes))
    return "\n".join(parts)
