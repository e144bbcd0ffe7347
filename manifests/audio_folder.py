#!/usr/bin/env python
"""Any folder of audio -> fairseq pretraining manifests (see --help)."""

import sys

from vesper_fairseq.corpora.cli import audio_folder_main


def main(argv=None) -> int:
    return audio_folder_main(argv)


if __name__ == "__main__":
    sys.exit(main())
