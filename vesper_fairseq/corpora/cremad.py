"""CREMA-D (github.com/CheyneyComputerScience/CREMA-D).

Clips are ``AudioWAV/{actor}_{sentence}_{EMO}_{level}.wav``, e.g. ``1001_DFA_ANG_XX.wav``:
actor 1001..1091, sentence code (DFA, IEO, ...), emotion ANG/DIS/FEA/HAP/NEU/SAD, intensity
LO/MD/HI/XX. 7442 clips of 16 kHz mono wav.

``random``: stratified 80/20 with seed 2013 like the Vesper authors (speakers shared between
train and test, valid = test). ``actor``: actor-disjoint 80/10/10 train/valid/test.
"""

import logging
import re
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
)
from vesper_fairseq.corpora.pipeline import ManifestPlan, build_manifests
from vesper_fairseq.corpora.splits import check_fraction, split_groups, stratified_holdout
from vesper_fairseq.label_map import parse_label_map

logger = logging.getLogger(__name__)

CLASSES = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
_NAME = re.compile(
    r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emo>[A-Z]{3})_(?P<level>[A-Z]{2})$"
)


@dataclass
class CremadConfig:
    split: str = option(
        "random",
        "random: stratified 80/20, valid = test (authors); actor: actor-disjoint 80/10/10",
        choices=("random", "actor"),
    )
    test_percent: float | None = option(
        None, "share of the clips (random) or actors (actor) for test [0.2 random, 0.1 actor]"
    )
    valid_percent: float = option(0.1, "share of the actors for valid (actor split only)")
    seed: int = seed_option(2013)
    min_samples: int = min_samples_option()
    label_map: str | None = label_map_option()

    def __post_init__(self):
        if self.split not in ("random", "actor"):
            raise ValueError(f"split must be 'random' or 'actor', got {self.split!r}")
        check_fraction(self.test_share, "test_percent")
        check_fraction(self.valid_percent, "valid_percent")
        if self.split == "actor" and self.test_share + self.valid_percent >= 1:
            raise ValueError("test_percent + valid_percent must leave actors for training")

    @property
    def test_share(self) -> float:
        if self.test_percent is not None:
            return self.test_percent
        return 0.2 if self.split == "random" else 0.1


def wav_files(folder: Path) -> list[Path]:
    """The ``.wav`` files of a folder, any case of the extension, hidden ones left out."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() == ".wav" and not p.name.startswith(".") and not p.is_dir()
    )


def audio_dir(root: Path) -> Path:
    """``ROOT/AudioWAV`` (the repository layout), or ROOT itself when it holds the clips."""
    require_dir(root, "CREMA-D")
    for cand in (root / "AudioWAV", root):
        if cand.is_dir() and any(_NAME.match(p.stem) for p in wav_files(cand)):
            return cand
    raise CorpusLayoutError(
        f"{root} does not look like CREMA-D: expected AudioWAV/ with clips named "
        "{actor}_{sentence}_{EMO}_{level}.wav, e.g. AudioWAV/1001_DFA_ANG_XX.wav"
    )


def scan(root: Path) -> tuple[list[Utterance], list[Skipped]]:
    utts, skipped = [], []
    for path in wav_files(audio_dir(root)):
        m = _NAME.match(path.stem)
        if m is None:
            skipped.append(Skipped(path, "bad-name: not {actor}_{sentence}_{EMO}_{level}.wav"))
        elif m["emo"] not in CLASSES:
            skipped.append(Skipped(path, f"excluded-label: {m['emo']}"))
        else:
            extra = {"sentence": m["sentence"], "level": m["level"]}
            utts.append(Utterance(path, m["emo"], m["actor"], extra))
    return utts, skipped


def make_splits(rows: list[Row], cfg: CremadConfig) -> dict[str, list[Row]]:
    rows = sorted(rows, key=lambda r: r.rel)
    if cfg.split == "random":
        held = stratified_holdout([r.utt.label for r in rows], cfg.test_share, cfg.seed)
        test = [r for r, h in zip(rows, held) if h]
        return {"train": [r for r, h in zip(rows, held) if not h], "valid": test, "test": test}
    if cfg.split == "actor":
        train_share = 1.0 - cfg.valid_percent - cfg.test_share
        fractions = {"train": train_share, "valid": cfg.valid_percent, "test": cfg.test_share}
        assign = split_groups([r.utt.speaker for r in rows], fractions, cfg.seed)
        return {s: [r for r in rows if assign[r.utt.speaker] == s] for s in fractions}
    raise ValueError(f"split must be 'random' or 'actor', got {cfg.split!r}")


def build(root: Path, dest: Path, cfg: CremadConfig | None = None) -> str:
    cfg = cfg or CremadConfig()
    root, dest = Path(root).resolve(), Path(dest).resolve()
    utts, skipped = scan(root)
    plan = ManifestPlan(
        title="CREMA-D",
        corpus_root=root,
        dest=dest,
        utterances=utts,
        skipped=skipped,
        outputs={"": ["train", "valid", "test"]},
        split=lambda rows: {"": make_splits(rows, cfg)},
        classes=CLASSES,
        min_samples=cfg.min_samples,
        settings=asdict(cfg),
        label_map=parse_label_map(cfg.label_map),
    )
    built = build_manifests(plan)
    if cfg.split == "random":
        note = (
            f"random stratified {1 - cfg.test_share:.0%}/{cfg.test_share:.0%} split, "
            f"seed {cfg.seed}: speakers shared by train and test, valid = test "
            "(the authors' protocol; optimistic)"
        )
    else:
        note = f"actor-disjoint split, seed {cfg.seed}: no actor in two splits"
    return summarize("CREMA-D", built.layout[""], built.skipped, built.classes, [note])
