#!/usr/bin/env python
"""MELD.Raw -> DEST/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt (clips decoded to 16 kHz)."""

import sys

from vesper_fairseq.corpora import cli
from vesper_fairseq.corpora.meld import MeldConfig, build


def main(argv=None) -> int:
    a = cli.parser(__doc__).parse_args(argv)
    return cli.run(lambda: build(a.root, a.dest, MeldConfig(min_samples=a.min_samples)))


if __name__ == "__main__":
    sys.exit(main())
