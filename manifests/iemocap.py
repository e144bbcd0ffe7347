#!/usr/bin/env python
"""IEMOCAP -> DEST/fold{1..5}/{split}.{tsv,emo,spk} + dict.emo.txt, one fold per session."""

import sys

from vesper_fairseq.corpora import cli
from vesper_fairseq.corpora.iemocap import IemocapConfig, build


def main(argv=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument(
        "--valid",
        choices=["split", "test"],
        default="split",
        help="split: stratified share of the 4 training sessions; test: valid = test (authors)",
    )
    p.add_argument("--valid-percent", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--five-class", action="store_true", help="keep exc apart from hap")
    p.add_argument("--improvised-only", action="store_true", help="improvised dialogues only")
    a = p.parse_args(argv)
    cfg = IemocapConfig(
        five_class=a.five_class,
        improvised_only=a.improvised_only,
        valid=a.valid,
        valid_percent=a.valid_percent,
        seed=a.seed,
        min_samples=a.min_samples,
    )
    return cli.run(lambda: build(a.root, a.dest, cfg))


if __name__ == "__main__":
    sys.exit(main())
