#!/usr/bin/env python
"""Any folder of audio -> DEST/{train,valid}.tsv for pretraining (no labels)."""

import sys

from vesper_fairseq.corpora import cli
from vesper_fairseq.corpora.audio_folder import AudioFolderConfig, build, parse_exts


def main(argv=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--ext", default="wav,flac", help="comma-separated audio file extensions")
    p.add_argument("--valid-percent", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    cfg = AudioFolderConfig(parse_exts(a.ext), a.valid_percent, a.seed, a.min_samples)
    return cli.run(lambda: build(a.root, a.dest, cfg))


if __name__ == "__main__":
    sys.exit(main())
