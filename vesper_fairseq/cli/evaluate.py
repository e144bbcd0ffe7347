"""vesper-evaluate: score a fine-tuned `vesper_classifier` checkpoint on one split.

    vesper-evaluate CKPT --data MANIFESTS --split test --out OUT

writes OUT/metrics.json (WA, UA, WF1, macro-F1, confusion, how the checkpoint was selected),
OUT/predictions.tsv (one row per scored manifest row: file, true, predicted, probabilities),
OUT/report.txt (per-class precision / recall / F1) and OUT/confusion.png.
"""

import argparse
import json
import logging
import os
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..evaluation.figures import plot_confusion
from ..evaluation.reports import per_class_report, write_predictions
from ..evaluation.scored_split import (
    cross_corpus_info,
    data_folder,
    left_out_text,
    model_labels,
    to_model_labels,
)
from ..evaluation.scores import confusion_matrix, emotion_scores
from ..formats.encoder_state import check_tensor
from ..io_utils import WriteError, atomic_write_text
from ..label_map import parse_label_map
from ..logging_setup import argument_parser, device_problem, parse_checked, setup_logging
from ..safe_load import add_trust_option, fairseq_checkpoint_loads
from .fairseq_command import PLUGIN_DIR

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
    parser.add_argument("--split", default="test", help="split to score (default: test)")
    parser.add_argument("--out", required=True, help="output folder")
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
    """A fairseq checkpoint, read weights-only unless `trust_checkpoint` (--trust-checkpoint)."""
    from fairseq import checkpoint_utils, utils

    utils.import_user_module(Namespace(user_dir=str(PLUGIN_DIR)))
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
    """Class probabilities (N, C) in dataset order, batching utterances of similar length."""
    sizes = np.array([dataset.size(i) for i in range(len(dataset))])
    order = np.argsort(sizes, kind="stable")
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, collate_fn=dataset.collater, num_workers=num_workers
    )
    probs = np.zeros((len(dataset), len(model.cfg.labels)), dtype=np.float64)
    with torch.inference_mode():
        for batch in tqdm(loader, desc="evaluate", unit="batch", disable=quiet):
            net_input = {k: v.to(device) for k, v in batch["net_input"].items()}
            logits = model(**net_input).float()
            probs[batch["id"].numpy()] = torch.softmax(logits, dim=-1).cpu().double().numpy()
    return probs


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
) -> dict:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    state = read_checkpoint(checkpoint, trust_checkpoint)
    folder = data_folder(state, data, split, checkpoint)
    labels = model_labels(state, checkpoint)
    remapped = to_model_labels(labels, folder, split, parse_label_map(label_map), Path(out))
    model, cfg, dataset = scored_split(
        checkpoint, state, remapped.data if remapped else folder, split, device
    )
    probs = predict(model, dataset, batch_size, device, num_workers, quiet)
    preds = probs.argmax(axis=1)
    targets = dataset.targets
    confusion = confusion_matrix(targets, preds, len(labels))
    scores = emotion_scores(confusion)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(out / "predictions.tsv", dataset.paths, labels, targets, preds, probs)
    where = f"split {split} of {folder}"
    header = f"{checkpoint}\n{where}: {len(dataset)} utterances\n{left_out_text(remapped)}\n"
    atomic_write_text(out / "report.txt", header + per_class_report(confusion, labels) + "\n")
    default_title = "{} {}: WA {:.1f}  UA {:.1f}  WF1 {:.1f}".format(
        folder.name, split, *(100 * scores[k] for k in ("wa", "ua", "wf1"))
    )
    plot_confusion(confusion, labels, str(out / "confusion.png"), title=title or default_title)
    result = {
        **scores,
        "checkpoint": os.path.abspath(checkpoint),
        "data": str(folder),
        "split": split,
        "num_utterances": int(len(dataset)),
        **cross_corpus_info(remapped, label_map),
        "skipped_rows": len(dataset.dataset.skipped_indices),
        "labels": labels,
        "confusion": confusion.tolist(),
        "selection": selection_info(cfg, state),
        "layer_weights": model.layer_weights(),
    }
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
    logger.info(
        "%s %s: WA %.4f UA %.4f WF1 %.4f macro-F1 %.4f (%d utterances) -> %s",
        *(checkpoint, split, scores["wa"], scores["ua"], scores["wf1"], scores["macro_f1"]),
        *(len(dataset), out),
    )
    return result


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
        )
    except (FileNotFoundError, ValueError, WriteError) as e:
        print(f"vesper-evaluate: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
