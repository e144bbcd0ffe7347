#!/usr/bin/env python
"""LSSED -> fairseq pretraining manifests from its metadata csv (see --help)."""

import sys

from vesper_fairseq.corpora.cli import lssed_main


def main(argv=None) -> int:
    return lssed_main(argv)


if __name__ == "__main__":
    sys.exit(main())
