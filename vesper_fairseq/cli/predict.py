"""vesper-predict: classify the emotion of audio files with a fine-tuned classifier.

    vesper-predict CHECKPOINT INPUT... --out predictions.tsv [--segments]

INPUT: audio files, folders (searched recursively by extension) or fairseq manifests (any
.tsv; one whose audio folder is gone or that holds no rows is reported and skipped). The
output's extension picks its format: .tsv, .csv or .jsonl. One row per file; with --segments
also one per window. Files that cannot be classified are listed with their reason in
OUT's name + .skipped.tsv and never stop the run.
"""

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from ..inference.classifier import DTYPES, AudioInputError, EmotionClassifier
from ..inference.files import collect_inputs, output_format, write_predictions, write_skipped
from ..inference.windows import SILENCE_DB
from ..io_utils import WriteError
from ..logging_setup import (
    argument_parser,
    device_problem,
    number_problem,
    parse_checked,
    setup_logging,
)
from ..modules.wavlm_config import SAMPLE_RATE
from ..safe_load import CheckpointError, add_trust_option

logger = logging.getLogger("vesper_fairseq.predict")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argument_parser("vesper-predict", __doc__)
    parser.add_argument("checkpoint", help="a fine-tuned vesper_classifier checkpoint")
    parser.add_argument("inputs", nargs="+", help="audio files, folders or manifests (.tsv)")
    parser.add_argument("--out", required=True, help="output file: .tsv, .csv or .jsonl")
    parser.add_argument("--segments", action="store_true", help="also one row per window")
    parser.add_argument(
        "--no-segment", action="store_true", help="score only the first crop of each file"
    )
    parser.add_argument("--hop", type=float, help="seconds between windows (default: half)")
    parser.add_argument(
        "--silence-db",
        type=float,
        default=SILENCE_DB,
        help="a window this many dB below the file's speech level is silent",
    )
    parser.add_argument("--ext", help="extensions searched in folders, e.g. wav,flac")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda:0")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="GPU only")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_trust_option(parser)
    return parse_checked(parser, argv, option_problem)


def option_problem(args) -> str | None:
    """What is wrong with the options, before the checkpoint is read."""
    if args.batch_size < 1:
        return f"--batch-size must be >= 1, got {args.batch_size}"
    problem = device_problem(args.device)
    problem = problem or number_problem("--hop (seconds)", args.hop, 0, inclusive=False)
    if not problem and args.hop is not None and round(args.hop * SAMPLE_RATE) < 1:
        problem = f"--hop {args.hop} s is shorter than one sample (1/{SAMPLE_RATE} s)"
    problem = problem or number_problem("--silence-db", args.silence_db, 0)
    if problem:
        return problem
    if args.ext is not None and not [e for e in args.ext.split(",") if e.strip(" .")]:
        return f"--ext: expected comma-separated file extensions such as wav,flac, got {args.ext!r}"
    try:
        output_format(args.out)
    except ValueError as e:
        return str(e)
    return None


def predict_files(clf: EmotionClassifier, files, args):
    """[(name, Prediction)], [(name, reason)]; files are read one batch at a time."""
    results, skipped = [], []
    bar = tqdm(total=len(files), desc="predict", unit="file", disable=args.quiet)
    for b in range(0, len(files), args.batch_size):
        names, waves = [], []
        for path in files[b : b + args.batch_size]:
            try:
                waves.append(clf.load_audio(path))
                names.append(str(path))
            except AudioInputError as e:
                skipped.append((str(path), str(e)))
        preds = clf.predict_waveforms(
            waves, args.batch_size, not args.no_segment, args.hop, args.silence_db
        )
        results += zip(names, preds)
        bar.update(len(files[b : b + args.batch_size]))
    bar.close()
    return results, skipped


def run(args) -> int:
    clf = EmotionClassifier.from_checkpoint(
        args.checkpoint, args.device, args.dtype, args.trust_checkpoint, "--trust-checkpoint"
    )
    extensions = args.ext.split(",") if args.ext else None
    files, skipped = collect_inputs(args.inputs, extensions)
    results, unreadable = predict_files(clf, files, args)
    skipped += unreadable
    write_predictions(args.out, results, clf.labels, segments=args.segments)
    skipped_path = Path(str(args.out) + ".skipped.tsv")
    if skipped:
        write_skipped(skipped_path, skipped)
        for name, reason in skipped:
            logger.warning("skipped %s: %s", name, reason)
    elif skipped_path.exists():
        skipped_path.unlink()  # from an earlier run
    counts = {c: sum(p.label == c for _, p in results) for c in clf.labels}
    logger.info(
        "%d files classified (%s), %d skipped%s -> %s",
        len(results),
        ", ".join(f"{c} {n}" for c, n in counts.items()),
        len(skipped),
        f" (listed in {skipped_path})" if skipped else "",
        args.out,
    )
    return 0 if results or not skipped else 1


def main(argv=None) -> int:
    setup_logging()
    args = parse_args(argv)
    try:
        return run(args)
    except (CheckpointError, ValueError, FileNotFoundError, WriteError) as e:
        print(f"vesper-predict: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
