#!/usr/bin/env python
"""One corpus of EmoBox's partitions -> fairseq manifests, fold by fold (see --help)."""

import sys

from vesper_fairseq.corpora.cli import emobox_main


def main(argv=None) -> int:
    return emobox_main(argv)


if __name__ == "__main__":
    sys.exit(main())
