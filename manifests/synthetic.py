#!/usr/bin/env python
"""Synthetic emotional speech: generate the corpus, then its manifests (see --help)."""

import sys

from vesper_fairseq.corpora.cli import synthetic_main


def main(argv=None) -> int:
    return synthetic_main(argv)


if __name__ == "__main__":
    sys.exit(main())
