"""vesper-cv: fine-tune and evaluate on every fold of a manifest folder with one config.

    vesper-cv DATA --config-dir examples/finetuning --config-name iemocap --out OUT \\
        -- model.upstream_path=ENCODER optimization.max_epoch=50

For each DATA/fold*/ it runs fairseq-hydra-train (save_dir OUT/foldN/checkpoints), then scores
the selected checkpoint on the test split (OUT/foldN/eval/, as vesper-evaluate), and writes
OUT/summary.json and OUT/summary.md (per-fold figures, mean and std).

Each fold records what made it in OUT/foldN/cv_fold.json: the config file, the overrides, the
upstream's weights and the fold's manifests (training), the split and checkpoint (evaluation).
A rerun skips a fold evaluated with the same settings and resumes an interrupted training from
checkpoint_last.pt; a fold trained with other settings is refused, naming what differs (a new
--out, or --overwrite to retrain it); another --split or --checkpoint evaluates the trained
fold again, replacing its eval/, without retraining.
"""

import argparse
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from ..evaluation.reports import SCORES, emobox_summary, summary_markdown
from ..evaluation.scores import emotion_scores
from ..io_utils import WriteError, atomic_write_text
from ..logging_setup import argument_parser, setup_logging
from .cv_record import (
    check_folds,
    evaluation_differences,
    fold_training,
    prepare_fold,
    run_settings,
    write_record,
)
from .evaluate import evaluate, option_problem
from .fairseq_command import hydra_train_command
from .training_run import planned_updates, run_training

logger = logging.getLogger(__name__)


def parse_args(argv=None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = []
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1 :]
    parser = argument_parser(
        "vesper-cv",
        __doc__,
        epilog="Arguments after -- are passed to fairseq-hydra-train as overrides. Each fold "
        "records what made it (OUT/foldN/cv_fold.json): a rerun skips a fold made with the same "
        "settings, refuses one trained with other settings (see --overwrite) and evaluates a "
        "trained fold again when only --split or --checkpoint differ.",
    )
    parser.add_argument("data", help="manifest folder holding fold*/ folders")
    parser.add_argument("--config-dir", required=True, help="fairseq-hydra-train config folder")
    parser.add_argument("--config-name", required=True, help="config name (e.g. iemocap)")
    parser.add_argument("--out", required=True, help="output folder (one subfolder per fold)")
    parser.add_argument("--folds", help="comma-separated fold names (default: every fold*/)")
    parser.add_argument(
        "--split",
        default="test",
        help="split scored in each fold (another one on a rerun: evaluated again, not retrained)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="checkpoint_best.pt (selected on the valid split) or checkpoint_last.pt",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="redo the folds trained with other settings (or by an earlier release): their "
        "checkpoints and evaluation are removed first; without it such a fold is refused",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="evaluation batch size")
    parser.add_argument("--device", default="auto", help="evaluation device")
    args = parser.parse_args(argv)
    problem = option_problem(args)
    if problem is None and not Path(args.data).is_dir():
        problem = f"{args.data} is not a folder (DATA holds the fold*/ manifest folders)"
    if problem is None and not Path(args.config_dir).is_dir():
        problem = f"--config-dir {args.config_dir} is not a folder"
    if problem:
        parser.error(problem)
    args.overrides = overrides
    return args


def find_folds(data: Path, names: str | None = None) -> list[Path]:
    if not data.is_dir():
        raise FileNotFoundError(f"{data} is not a folder")
    folds = sorted(
        (p for p in data.iterdir() if p.is_dir() and re.fullmatch(r"fold\w*", p.name)),
        key=lambda p: (len(p.name), p.name),
    )
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        missing = [n for n in wanted if n not in {p.name for p in folds}]
        if missing:
            raise FileNotFoundError(f"{data}: no fold folders {missing}")
        folds = [p for p in folds if p.name in wanted]
    if not folds:
        raise FileNotFoundError(f"{data}: no fold*/ manifest folders")
    return folds


def train_command(args, fold: Path, fold_out: Path) -> list[str]:
    return hydra_train_command(
        Path(args.config_dir).resolve(),
        args.config_name,
        (fold_out / "checkpoints").resolve(),
        f"task.data={fold.resolve()}",
        *args.overrides,
        hydra_dir=(fold_out / "hydra").resolve(),
    )


def train_fold(args, fold: Path, fold_out: Path) -> None:
    fold_out.mkdir(parents=True, exist_ok=True)
    config = Path(args.config_dir) / f"{args.config_name}.yaml"
    total = planned_updates(config, args.overrides)
    logger.info("%s: training (log: %s)", fold.name, fold_out / "train.log")
    run_training(train_command(args, fold, fold_out), fold_out / "train.log", fold.name, total)


def same_manifest(fold: Path, a: str, b: str) -> bool:
    pa, pb = fold / f"{a}.tsv", fold / f"{b}.tsv"
    return pa.is_file() and pb.is_file() and pa.read_bytes() == pb.read_bytes()


def run_fold(args, fold: Path, out: Path, training: dict) -> dict:
    """Trains (unless trained with `training` already) and evaluates (unless evaluated with
    these --split and --checkpoint already) one fold; its metrics."""
    fold_out = out / fold.name
    record = prepare_fold(fold_out, training, args.overwrite)
    if not record["trained"]:
        train_fold(args, fold, fold_out)
        record = write_record(fold_out, dict(record, trained=True))
    evaluation = {"split": args.split, "checkpoint": args.checkpoint}
    metrics_path = fold_out / "eval" / "metrics.json"
    if record["evaluation"] == evaluation and metrics_path.is_file():
        logger.info("%s: already evaluated (%s), skipped", fold.name, metrics_path)
        return json.loads(metrics_path.read_text())
    if record["evaluation"] is not None:
        changes = "; ".join(evaluation_differences(record, evaluation))
        logger.info("%s: evaluation settings differ (%s): evaluating it again", fold.name, changes)
    record = write_record(fold_out, dict(record, evaluation=None))
    shutil.rmtree(fold_out / "eval", ignore_errors=True)
    metrics = evaluate_fold(args, fold, fold_out)
    write_record(fold_out, dict(record, evaluation=evaluation))
    return metrics


def evaluate_fold(args, fold: Path, fold_out: Path) -> dict:
    checkpoint = fold_out / "checkpoints" / f"checkpoint_{args.checkpoint}.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{fold.name}: training left no {checkpoint}")
    return evaluate(
        str(checkpoint),
        str(fold_out / "eval"),
        data=str(fold),
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        title=f"{fold.name} {args.split}",
        quiet=True,
    )


def selection_text(args, results: dict[str, dict], folds: dict[str, Path]) -> str:
    if args.checkpoint == "last":
        return "the last checkpoint of each fold (no model selection)"
    sel = next(iter(results.values()))["selection"]
    text = (
        f"checkpoint_best.pt of each fold, selected on its '{sel['subset']}' split by "
        f"{sel['metric']} ({'max' if sel['maximize'] else 'min'})"
    )
    if any(same_manifest(folds[name], sel["subset"], args.split) for name in results):
        text += f" -- '{sel['subset']}' is the same manifest as '{args.split}': optimistic"
    return text


def summarize(args, results: dict[str, dict], folds: dict[str, Path], made_by=None) -> dict:
    """The summary; `made_by`: each fold's training settings (cv_record.fold_training)."""
    table = {name: {k: r[k] for k in SCORES} for name, r in results.items()}
    values = {k: np.array([row[k] for row in table.values()]) for k in SCORES}
    pooled = np.sum([np.array(r["confusion"]) for r in results.values()], axis=0)
    return {
        "data": str(Path(args.data).resolve()),
        "config": f"{Path(args.config_dir).resolve()}/{args.config_name}",
        "overrides": args.overrides,
        "split": args.split,
        "checkpoint": args.checkpoint,
        "selection": selection_text(args, results, folds),
        "folds": {
            name: {**table[name], "num_utterances": r["num_utterances"]}
            for name, r in results.items()
        },
        "mean": {k: float(v.mean()) for k, v in values.items()},
        "std": {k: float(v.std()) for k, v in values.items()},
        "pooled": emotion_scores(pooled),
        "labels": next(iter(results.values()))["labels"],
        "protocol": read_protocol(Path(args.data)),
        "emobox": emobox_summary(results),
        "made_by": made_by_summary(made_by or {}),
    }


def made_by_summary(made_by: dict[str, dict]) -> dict:
    """The digests that identify the run's training: config, upstream, each fold's manifests."""
    first = next(iter(made_by.values()), {})
    return {
        "config_sha256": first.get("config_sha256"),
        "upstream_weights": first.get("upstream_weights"),
        "manifests_sha256": {name: t["manifests_sha256"] for name, t in made_by.items()},
    }


def read_protocol(data: Path) -> str | None:
    """How the folds were made, as the manifest script recorded it in DATA/manifests.json."""
    try:
        record = json.loads((data / "manifests.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("protocol") if isinstance(record, dict) else None


def main(argv=None) -> int:
    setup_logging()
    args = parse_args(argv)
    try:
        folds = {p.name: p for p in find_folds(Path(args.data), args.folds)}
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        settings = run_settings(args)
        made_by = {name: fold_training(settings, fold) for name, fold in folds.items()}
        check_folds(out, made_by, args.overwrite)
        results = {name: run_fold(args, fold, out, made_by[name]) for name, fold in folds.items()}
    except (FileNotFoundError, ValueError, RuntimeError, WriteError) as e:
        print(f"vesper-cv: error: {e}", file=sys.stderr)
        return 2
    summary = summarize(args, results, folds, made_by)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    logger.info("summary: %s", os.fspath(out / "summary.md"))
    print(summary_markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
