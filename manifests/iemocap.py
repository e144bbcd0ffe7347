#!/usr/bin/env python
"""IEMOCAP -> leave-one-session-out fairseq manifests and labels (see --help)."""

import sys

from vesper_fairseq.corpora.cli import iemocap_main


def main(argv=None) -> int:
    return iemocap_main(argv)


if __name__ == "__main__":
    sys.exit(main())
