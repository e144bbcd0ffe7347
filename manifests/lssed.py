#!/usr/bin/env python
"""LSSED -> DEST/{train,valid}.tsv (+ .spk) for pretraining, from its metadata csv."""

import sys

from vesper_fairseq.corpora import cli
from vesper_fairseq.corpora.lssed import LssedConfig, build


def main(argv=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--metadata", help="the metadata csv (default: the csv found under ROOT)")
    p.add_argument("--valid-percent", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    cfg = LssedConfig(a.metadata, a.valid_percent, a.seed, a.min_samples)
    return cli.run(lambda: build(a.root, a.dest, cfg))


if __name__ == "__main__":
    sys.exit(main())
