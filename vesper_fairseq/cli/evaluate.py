"""vesper-evaluate: score a fine-tuned `vesper_classifier` checkpoint on one split.

    vesper-evaluate CKPT --data MANIFESTS --split test --out OUT

writes OUT/metrics.json (WA, UA, WF1, macro-F1, confusion, how the checkpoint was selected,
the rows not scored and what made the outputs), OUT/predictions.tsv (one row per scored
manifest row: file, true, predicted, probabilities), OUT/report.txt (per-class precision /
recall / F1) and OUT/confusion.png, as one set (see evaluation/output_set.py). A row whose audio
cannot be read is reported and skipped.
"""

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..evaluation.figures import plot_confusion
from ..evaluation.output_set import made_by, output_set
from ..evaluation.reports import per_class_report, write_predictions
from ..evaluation.scored_split import (
    cross_corpus_info,
    data_folder,
    left_out_text,
    model_labels,
    to_model_labels,
)
from ..evaluation.scores import confusion_matrix, emotion_scores
from ..evaluation.skipped_rows import ReadableItems, rows_text, skipped_rows, skipped_text
from ..formats.encoder_state import check_tensor
from ..io_utils import LockedError, WriteError, atomic_write_text
from ..label_map import parse_label_map
from ..logging_setup import argument_parser, device_problem, parse_checked, setup_logging
from ..safe_load import add_trust_option, fairseq_checkpoint_loads

logger = logging.getLogger(__name__)

NO_TRUST_FROM_FILE = {"trust_upstream": False, "trust_restore_file": False, "trust_teacher": False}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argument_parser("vesper-evaluate", __doc__)
    parser.add_argument("checkpoint", help="a vesper_classifier checkpoint (checkpoint_best.pt)")
    parser.add_argument(
        "--data",
        help="manifest folder holding SPLIT.tsv and SPLIT.emo (default: the one it was trained "
        "on); the classes are the checkpoint's, matched by name: no dict.emo.txt is needed",
    )
    parser.add_argument("--split", default="test", help="split to score")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an evaluation in OUT made with other settings (checkpoint, data, split, "
        "label map)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="utterances per batch")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda:0")
    parser.add_argument("--num-workers", type=int, default=0, help="data loading workers")
    parser.add_argument("--title", help="title of the confusion figure")
    parser.add_argument(
        "--label-map",
        help="rename/merge the data's labels into the model's (map.json, a=b file or "
        "ANG=ang,HAP=hap); rows whose class the model does not know are reported and left out",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_trust_option(parser)
    return parse_checked(parser, argv, option_problem)


def option_problem(args) -> str | None:
    """What is wrong with vesper-evaluate's (or vesper-cv's) options, before any work."""
    if args.batch_size < 1:
        return f"--batch-size must be >= 1, got {args.batch_size}"
    if getattr(args, "num_workers", 0) < 0:
        return f"--num-workers must be >= 0, got {args.num_workers}"
    return device_problem(args.device)


def read_checkpoint(path: str, trust_checkpoint: bool = False) -> dict:
    """A fairseq checkpoint, read weights-only unless `trust_checkpoint` (--trust-checkpoint).
    The plugin's tasks and models are registered: this module is part of it."""
    from fairseq import checkpoint_utils

    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} not found")
    with fairseq_checkpoint_loads(trust_checkpoint, "--trust-checkpoint"):
        try:
            return checkpoint_utils.load_checkpoint_to_cpu(path)
        except (KeyError, TypeError, AttributeError):
            raise ValueError(
                f"{path}: not a fairseq checkpoint (vesper-evaluate scores the checkpoint_*.pt "
                "of a fine-tuned vesper_classifier)"
            ) from None


def load_classifier(path: str, data: str | None, device: torch.device, state=None):
    """The model, its task (with `data` as task.data) and the checkpoint's training state. The
    task's classes are the checkpoint's model.labels: no dict.emo.txt is read."""
    from fairseq import checkpoint_utils
    from fairseq.dataclass.utils import merge_with_parent, overwrite_args_by_name

    from ..tasks.emotion_classification import (
        EmotionClassificationConfig,
        EmotionClassificationTask,
    )

    state = read_checkpoint(path) if state is None else state
    cfg = state.get("cfg")
    model_name = cfg.get("model", {}).get("_name") if cfg is not None else None
    if model_name != "vesper_classifier":
        raise ValueError(f"{path}: a {model_name!r} checkpoint, not a vesper_classifier one")
    if cfg["model"].get("upstream") is None:  # else the model would load model.upstream_path
        raise ValueError(f"{path}: model.upstream (the encoder's config) is not in the checkpoint")
    overrides = {"data": os.path.abspath(data)} if data else {}
    # an opt-in comes from the user, never from the file: its own trust_* values are dropped
    overwrite_args_by_name(state["cfg"], {**overrides, **NO_TRUST_FROM_FILE})
    labels = model_labels(state, path)
    # the checkpoint's own task.trust_restore_file must not open later loads to pickles
    with fairseq_checkpoint_loads(False, "--trust-checkpoint"):
        task_cfg = merge_with_parent(EmotionClassificationConfig(), state["cfg"].task)
        task = EmotionClassificationTask.with_labels(task_cfg, labels, f"{path} (its model.labels)")
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [path], task=task, state=state
        )
    expected = models[0].state_dict()
    for key, tensor in state["model"].items():  # NaN or integer weights score silently wrong
        if key in expected:
            check_tensor(path, key, tensor, expected[key], "the classifier")
    model = models[0].to(device).eval()
    return model, cfg, task, state


def selection_info(cfg, state) -> dict:
    extra = state.get("extra_state") or {}
    history = state.get("optimizer_history") or [{}]
    return {
        "subset": cfg.dataset.valid_subset,
        "metric": cfg.checkpoint.best_checkpoint_metric,
        "maximize": bool(cfg.checkpoint.maximize_best_checkpoint_metric),
        "value": extra.get("val_loss"),
        "num_updates": history[-1].get("num_updates"),
    }


def predict(model, dataset, batch_size: int, device, num_workers: int = 0, quiet=False):
    """Class probabilities (N, C) in dataset order, batching utterances of similar length, and
    {index: reason} of the items whose audio cannot be read (their rows stay zero)."""
    sizes = np.array([dataset.size(i) for i in range(len(dataset))])
    order = np.argsort(sizes, kind="stable")
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    items = ReadableItems(dataset)
    loader = torch.utils.data.DataLoader(
        items, batch_sampler=batches, collate_fn=items.collater, num_workers=num_workers
    )
    probs = np.zeros((len(dataset), len(model.cfg.labels)), dtype=np.float64)
    unreadable = {}
    with torch.inference_mode():
        for batch in tqdm(loader, desc="evaluate", unit="batch", disable=quiet):
            unreadable.update(batch["unreadable"])
            if "net_input" not in batch:
                continue
            net_input = {k: v.to(device) for k, v in batch["net_input"].items()}
            logits = model(**net_input).float()
            probs[batch["id"].numpy()] = torch.softmax(logits, dim=-1).cpu().double().numpy()
    return probs, unreadable


def scored_split(checkpoint: str, state: dict, data, split: str, device):
    """(model, its training cfg, the labelled dataset of ``data``'s split)."""
    model, cfg, task, state = load_classifier(checkpoint, str(data), device, state)
    task.load_dataset(split)
    dataset = task.dataset(split)
    if len(dataset) == 0:
        raise ValueError(f"{task.cfg.data}: split {split!r} has no utterance to score")
    return model, cfg, dataset


def evaluate(
    checkpoint: str,
    out: str,
    data: str | None = None,
    split: str = "test",
    batch_size: int = 16,
    device: str = "auto",
    num_workers: int = 0,
    title: str | None = None,
    quiet: bool = False,
    label_map: str | None = None,
    trust_checkpoint: bool = False,
    overwrite: bool = False,
) -> dict:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    state = read_checkpoint(checkpoint, trust_checkpoint)
    folder = data_folder(state, data, split, checkpoint)
    mapping = parse_label_map(label_map)
    settings = made_by(checkpoint, folder, split, mapping)
    with output_set(Path(out), settings, overwrite) as staging:
        labels = model_labels(state, checkpoint)
        remapped = to_model_labels(labels, folder, split, mapping, staging)
        model, cfg, dataset = scored_split(
            checkpoint, state, remapped.data if remapped else folder, split, device
        )
        probs, unreadable = predict(model, dataset, batch_size, device, num_workers, quiet)
        result, predictions = score(dataset, probs, unreadable, labels, folder / f"{split}.tsv")
        result.update(
            checkpoint=os.path.abspath(checkpoint), data=str(folder), split=split,
            **cross_corpus_info(remapped, label_map), selection=selection_info(cfg, state),
            layer_weights=model.layer_weights(), made_by=settings,
        )  # fmt: skip
        header = f"{checkpoint}\nsplit {split} of {folder}: {result['num_utterances']} utterances\n"
        header += left_out_text(remapped) + skipped_text(result["skipped_rows"])
        title = title or "{} {}: WA {:.1f}  UA {:.1f}  WF1 {:.1f}".format(
            folder.name, split, *(100 * result[k] for k in ("wa", "ua", "wf1"))
        )
        write_outputs(staging, result, predictions, header, title)
    logger.info(
        "%s %s: WA %.4f UA %.4f WF1 %.4f macro-F1 %.4f (%d utterances, %s not scored) -> %s",
        *(checkpoint, split, *(result[k] for k in ("wa", "ua", "wf1", "macro_f1"))),
        *(result["num_utterances"], rows_text(len(result["skipped_rows"])), out),
    )
    return result


def score(dataset, probs, unreadable: dict, labels: list[str], manifest: Path):
    """(metrics of the rows that were read, the predictions.tsv columns); the rows not scored
    are logged and listed in the metrics (skipped_rows)."""
    for index, reason in sorted(unreadable.items()):
        logger.warning("skipped %s: %s", dataset.dataset.audio_path(index), reason)
    read = np.array([i not in unreadable for i in range(len(dataset))])
    if not read.any():
        index, reason = min(unreadable.items())
        raise ValueError(
            f"{manifest}: the audio of none of its rows can be read "
            f"({dataset.dataset.audio_path(index)}: {reason})"
        )
    targets, probs = dataset.targets[read], probs[read]
    preds = probs.argmax(axis=1)
    confusion = confusion_matrix(targets, preds, len(labels))
    result = {
        **emotion_scores(confusion),
        "num_utterances": int(read.sum()),
        "skipped_rows": skipped_rows(dataset, unreadable),
        "labels": labels,
        "confusion": confusion.tolist(),
    }
    paths = [path for path, ok in zip(dataset.paths, read) if ok]
    return result, (paths, labels, targets, preds, probs)


def write_outputs(folder: Path, result: dict, predictions, header: str, title: str) -> None:
    """metrics.json, predictions.tsv, report.txt and confusion.png into `folder`."""
    confusion, labels = np.array(result["confusion"]), result["labels"]
    write_predictions(folder / "predictions.tsv", *predictions)
    atomic_write_text(folder / "report.txt", f"{header}\n{per_class_report(confusion, labels)}\n")
    plot_confusion(confusion, labels, str(folder / "confusion.png"), title=title)
    atomic_write_text(folder / "metrics.json", json.dumps(result, indent=2) + "\n")


def main(argv=None) -> int:
    setup_logging()
    args = parse_args(argv)
    try:
        evaluate(
            args.checkpoint,
            args.out,
            data=args.data,
            split=args.split,
            batch_size=args.batch_size,
            device=args.device,
            num_workers=args.num_workers,
            title=args.title,
            quiet=args.quiet,
            label_map=args.label_map,
            trust_checkpoint=args.trust_checkpoint,
            overwrite=args.overwrite,
        )
    except (FileNotFoundError, ValueError, WriteError, LockedError) as e:
        print(f"vesper-evaluate: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
