#!/usr/bin/env python
"""MELD -> fairseq manifests and labels, clips decoded to 16 kHz (see --help)."""

import sys

from vesper_fairseq.corpora.cli import meld_main


def main(argv=None) -> int:
    return meld_main(argv)


if __name__ == "__main__":
    sys.exit(main())
