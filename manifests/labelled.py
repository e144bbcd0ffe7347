#!/usr/bin/env python
"""Your own labelled audio (CSV/TSV table or class folders) -> fairseq manifests (see --help)."""

import sys

from vesper_fairseq.corpora.cli import labelled_main


def main(argv=None) -> int:
    return labelled_main(argv)


if __name__ == "__main__":
    sys.exit(main())
