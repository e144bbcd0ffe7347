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
from dataclasses import dataclass
from pathlib import Path

from vesper_fairseq.corpora.audio import MIN_SAMPLES
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
from vesper_fairseq.corpora.splits import stratified_holdout
from vesper_fairseq.corpora.store import prepare_corpus

logger = logging.getLogger(__name__)

SESSIONS = (1, 2, 3, 4, 5)
CLASSES_4 = ["ang", "hap", "neu", "sad"]
CLASSES_5 = ["ang", "exc", "hap", "neu", "sad"]

_EVAL_LINE = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<turn>Ses\d\d[FM]_\S+)"
    r"\s+(?P<emo>[a-z]{3})\s+\[[^\]]*\]\s*$"
)
_TURN = re.compile(r"^Ses(?P<session>\d\d)[FM]_(?P<dialog_rest>.+)_(?P<gender>[FM])\d+$")


@dataclass
class IemocapConfig:
    five_class: bool = False
    improvised_only: bool = False
    valid: str = "split"  # "split": stratified share of the 4 training sessions; "test": = test
    valid_percent: float = 0.2
    seed: int = 42
    min_samples: int = MIN_SAMPLES

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


def parse_evaluation(path: Path) -> list[tuple[str, str]]:
    """(turn name, emotion code) of every utterance line of one EmoEvaluation file."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _EVAL_LINE.match(line.strip())
        if m:
            out.append((m["turn"], m["emo"]))
    return out


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
            for turn, emo in parse_evaluation(eval_path):
                dialog = turn.rsplit("_", 1)[0]
                wav = sdir / "sentences" / "wav" / dialog / f"{turn}.wav"
                label = merge.get(emo, emo)
                where = f"{eval_path.relative_to(root).as_posix()}"
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
    if not utts:
        raise CorpusLayoutError(f"{root}: no utterance of classes {cfg.classes} with a wav file")
    base, rows, bad = prepare_corpus(utts, root, dest, cfg.min_samples, desc="IEMOCAP")
    skipped += bad
    parts = []
    for fold in SESSIONS:
        splits = fold_splits(rows, fold, cfg)
        write_manifests(dest / f"fold{fold}", base, splits, cfg.classes)
        parts.append(
            summarize(f"IEMOCAP fold{fold} (test = Session{fold})", splits, None, cfg.classes)
        )
    write_skipped(dest, skipped, root)
    counts = Counter(r.utt.label for r in rows)
    notes = [
        f"{len(rows)} utterances: " + " ".join(f"{c}={counts[c]}" for c in cfg.classes),
        (
            "valid = test (the authors' protocol; optimistic)"
            if cfg.valid == "test"
            else f"valid = stratified {cfg.valid_percent:.0%} of the 4 training sessions"
        ),
    ]
    if cfg.improvised_only:
        notes.append("improvised dialogues only")
    parts.append(summarize("IEMOCAP all sessions", {"all": rows}, skipped, cfg.classes, notes))
    return "\n".join(parts)
