#!/usr/bin/env python
"""Generates the synthetic emotional-speech corpus in ROOT and writes its manifests to DEST."""

import sys

from vesper_fairseq.corpora import cli, synthetic


def main(argv=None) -> int:
    p = cli.parser(__doc__)
    p.add_argument("--speakers", type=int, default=8)
    p.add_argument("--clips-per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-speakers", type=int, default=2)
    p.add_argument("--valid-speakers", type=int, default=1)
    a = p.parse_args(argv)

    def build() -> str:
        synthetic.generate(a.root, a.speakers, a.clips_per_class, a.seed)
        return synthetic.build(a.root, a.dest, a.test_speakers, a.valid_speakers)

    return cli.run(build)


if __name__ == "__main__":
    sys.exit(main())
