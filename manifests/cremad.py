#!/usr/bin/env python
"""CREMA-D -> fairseq manifests and labels, random or actor split (see --help)."""

import sys

from vesper_fairseq.corpora.cli import cremad_main


def main(argv=None) -> int:
    return cremad_main(argv)


if __name__ == "__main__":
    sys.exit(main())
