"""Deterministic stratified, grouped and random splits (same input order + seed -> same split)."""

import math
import random
from collections import defaultdict
from collections.abc import Hashable, Sequence


def check_fraction(value: float, name: str) -> float:
    """A held-out share: in [0, 1) (1 would leave nothing to train on)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value:g}")
    return value


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def stratified_holdout(labels: Sequence[str], fraction: float, seed: int) -> list[bool]:
    """Marks ``round(fraction * n_c)`` items of every class c as held out.

    Items are taken from each class in a seeded shuffle of their positions, classes in sorted
    order, so the result depends only on the sequence of labels and the seed.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    rng = random.Random(seed)
    held = [False] * len(labels)
    for label in sorted(by_class):
        idx = by_class[label]
        rng.shuffle(idx)
        for i in idx[: _round_half_up(fraction * len(idx))]:
            held[i] = True
    return held


def random_holdout(n: int, fraction: float, seed: int) -> list[bool]:
    """Each item independently held out with probability ``fraction`` (fairseq's manifest way).

    With ``fraction > 0`` and at least 2 items, both sides get at least one item (a seeded
    pick moves one over), so a small folder still gets a validation set.
    """
    rng = random.Random(seed)
    held = [rng.random() < fraction for _ in range(n)]
    if fraction > 0 and n >= 2 and (all(held) or not any(held)):
        held[rng.randrange(n)] = not held[0]
    return held


def split_groups(
    groups: Sequence[Hashable], fractions: dict[str, float], seed: int
) -> dict[Hashable, str]:
    """Assigns whole groups (speakers, actors) to splits in proportion to ``fractions``.

    Every split with a positive fraction gets at least one group when there are enough groups;
    the last split takes the remainder.
    """
    names = list(fractions)
    uniq = sorted(set(groups), key=str)
    if len(uniq) < sum(1 for f in fractions.values() if f > 0):
        raise ValueError(f"{len(uniq)} groups cannot fill the splits {names}")
    total = sum(fractions.values())
    counts = [max(1, _round_half_up(fractions[s] / total * len(uniq))) for s in names[:-1]]
    while sum(counts) > len(uniq) - 1 and max(counts) > 1:
        counts[counts.index(max(counts))] -= 1
    counts.append(len(uniq) - sum(counts))
    rng = random.Random(seed)
    rng.shuffle(uniq)
    out, start = {}, 0
    for name, count in zip(names, counts):
        for g in uniq[start : start + count]:
            out[g] = name
        start += count
    return out
