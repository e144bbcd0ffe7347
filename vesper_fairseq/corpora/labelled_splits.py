"""Splits of labelled rows shared by the EmoBox and own-data builders.

A validation split is carved from training rows by speaker when every row has one and there
are at least two (no speaker in both), otherwise as a stratified share of each class; every
choice is seeded and returned with a sentence for the summary.
"""

from collections import Counter

from vesper_fairseq.corpora.manifest import Row
from vesper_fairseq.corpora.splits import split_groups, stratified_holdout


def speakers_known(rows: list[Row]) -> bool:
    return bool(rows) and all(r.utt.speaker is not None for r in rows)


def carve_valid(rows: list[Row], fraction: float, seed: int) -> tuple[list, list, str]:
    """(train, valid, how) with ``valid`` about ``fraction`` of ``rows``."""
    rows = sorted(rows, key=lambda r: r.rel)
    speakers = sorted({r.utt.speaker for r in rows}) if speakers_known(rows) else []
    if len(speakers) >= 2:
        assign = split_groups(
            [r.utt.speaker for r in rows], {"train": 1 - fraction, "valid": fraction}, seed
        )
        held = [assign[r.utt.speaker] == "valid" for r in rows]
        n_valid = sum(1 for s in speakers if assign[s] == "valid")
        how = f"speaker-disjoint: {n_valid} of {len(speakers)} speakers (seed {seed})"
    else:
        held = stratified_holdout([r.utt.label for r in rows], fraction, seed)
        why = "one speaker" if len(speakers) == 1 else "speakers unknown"
        how = f"stratified {fraction:.0%} of each class ({why}, seed {seed})"
    train = [r for r, h in zip(rows, held) if not h]
    valid = [r for r, h in zip(rows, held) if h]
    return train, valid, how


def make_splits(
    rows: list[Row], valid: float, test: float, seed: int
) -> tuple[dict[str, list[Row]], str]:
    """train/valid/test from scratch: speaker-disjoint when speakers are known, else
    stratified; ``how`` says which."""
    rows = sorted(rows, key=lambda r: r.rel)
    speakers = sorted({r.utt.speaker for r in rows}) if speakers_known(rows) else []
    fractions = {"train": 1 - valid - test, "valid": valid, "test": test}
    if len(speakers) >= sum(1 for f in fractions.values() if f > 0) and len(speakers) >= 2:
        assign = split_groups([r.utt.speaker for r in rows], fractions, seed)
        splits = {s: [r for r in rows if assign[r.utt.speaker] == s] for s in fractions}
        counts = Counter(assign.values())
        how = "speaker-disjoint splits: " + ", ".join(
            f"{s} {counts[s]} speakers" for s in fractions
        )
        return splits, how + f" (seed {seed})"
    held_test = stratified_holdout([r.utt.label for r in rows], test, seed)
    rest = [r for r, h in zip(rows, held_test) if not h]
    share = valid / (1 - test) if test < 1 else 0.0
    held_valid = stratified_holdout([r.utt.label for r in rest], share, seed + 1)
    splits = {
        "train": [r for r, h in zip(rest, held_valid) if not h],
        "valid": [r for r, h in zip(rest, held_valid) if h],
        "test": [r for r, h in zip(rows, held_test) if h],
    }
    why = "speakers unknown" if not speakers else f"{len(speakers)} speaker(s)"
    return (
        splits,
        f"stratified {1 - valid - test:.0%}/{valid:.0%}/{test:.0%} split ({why}, seed {seed})",
    )


def class_order(preferred: list[str], labels) -> list[str]:
    """The classes among ``labels``: those of ``preferred`` in its order, then the others
    sorted."""
    present = set(labels)
    ordered = [c for c in dict.fromkeys(preferred) if c in present]
    return ordered + sorted(present - set(ordered))
