#!/usr/bin/env python
"""CREMA-D -> DEST/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt."""

import sys

from vesper_fairseq.corpora import cli
from vesper_fairseq.corpora.cremad import CremadConfig, build


def main(argv=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument(
        "--split",
        choices=["random", "actor"],
        default="random",
        help="random: stratified 80/20, valid = test (authors); actor: actor-disjoint 80/10/10",
    )
    p.add_argument("--seed", type=int, default=2013)
    a = p.parse_args(argv)
    cfg = CremadConfig(split=a.split, seed=a.seed, min_samples=a.min_samples)
    return cli.run(lambda: build(a.root, a.dest, cfg))


if __name__ == "__main__":
    sys.exit(main())
