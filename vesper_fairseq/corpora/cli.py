"""Shared plumbing of the ``manifests/*.py`` command lines."""

import argparse
import logging
import sys
from collections.abc import Callable

from vesper_fairseq.corpora.manifest import CorpusLayoutError


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("root", metavar="ROOT", help="the corpus folder as its publisher ships it")
    p.add_argument("--dest", required=True, help="output folder (manifests, labels, cache)")
    p.add_argument(
        "--min-samples",
        type=int,
        default=400,
        help="skip clips shorter than this at 16 kHz (the model's receptive field)",
    )
    return p


def run(build: Callable[[], str]) -> int:
    """Runs a builder, prints its summary; a bad ROOT or option gives one error line, exit 2."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        summary = build()
    except (CorpusLayoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0
