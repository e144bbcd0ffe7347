"""Text reports of an evaluation: the per-class table of vesper-evaluate, its predictions file
and the cross-validation summary of vesper-cv."""

from pathlib import Path

import numpy as np

from ..io_utils import atomic_write_text
from .scores import emobox_scores, emotion_scores, per_class_scores

SCORES = ("wa", "ua", "macro_f1", "wf1")
NAMES = {"wa": "WA", "ua": "UA", "wf1": "WF1", "macro_f1": "macro-F1"}


def per_class_report(confusion, labels: list[str], digits: int = 4) -> str:
    """A text table of per-class precision, recall, F1 and support, then the overall scores."""
    scores = per_class_scores(confusion)
    if len(labels) != len(scores["support"]):
        raise ValueError(f"{len(labels)} labels for a {len(scores['support'])}-class confusion")
    overall = emotion_scores(confusion)
    width = max([len(str(label)) for label in labels] + [len("weighted avg")])
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for i, label in enumerate(labels):
        values = [scores[k][i] for k in ("precision", "recall", "f1")]
        cells = " ".join(f"{v:>9.{digits}f}" for v in values)
        lines.append(f"{label:>{width}} {cells} {int(scores['support'][i]):>9d}")
    total = int(scores["support"].sum())
    weights = scores["support"] / max(total, 1)
    lines.append("")
    lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {overall['wa']:>9.{digits}f} {total:>9d}")
    for name, avg in (("macro avg", np.mean), ("weighted avg", None)):
        values = [
            avg(scores[k]) if avg else float((scores[k] * weights).sum())
            for k in ("precision", "recall", "f1")
        ]
        cells = " ".join(f"{v:>9.{digits}f}" for v in values)
        lines.append(f"{name:>{width}} {cells} {total:>9d}")
    lines.append("")
    lines.append(
        "WA {wa:.{d}f}  UA {ua:.{d}f}  WF1 {wf1:.{d}f}  macro-F1 {macro_f1:.{d}f}".format(
            d=digits, **overall
        )
    )
    return "\n".join(lines)


def write_predictions(path: Path, files, labels, targets, preds, probs) -> None:
    header = ["file", "true", "predicted"] + [f"p_{label}" for label in labels]
    lines = ["\t".join(header)]
    for f, t, p, row in zip(files, targets, preds, probs):
        cells = [f, labels[t], labels[p]] + [f"{x:.6f}" for x in row]
        lines.append("\t".join(cells))
    atomic_write_text(path, "\n".join(lines) + "\n")


def emobox_summary(results: dict[str, dict]) -> dict:
    """UA and macro-F1 per fold as EmoBox computes them (see scores.emobox_scores)."""
    per_fold = {name: emobox_scores(np.array(r["confusion"])) for name, r in results.items()}
    out = {}
    for key in ("ua", "macro_f1"):
        values = np.array([scores[key] for scores in per_fold.values()])
        folds = {name: scores[key] for name, scores in per_fold.items()}
        out[key] = {"folds": folds, "mean": float(values.mean()), "std": float(values.std())}
    return out


def summary_markdown(summary: dict) -> str:
    head = "| fold | utterances | " + " | ".join(NAMES[k] for k in SCORES) + " |"
    lines = [
        f"# {Path(summary['data']).name}: {summary['split']} split, {len(summary['folds'])} folds",
        "",
        f"Config: `{summary['config']}` {' '.join(summary['overrides'])}".rstrip(),
        "",
        f"Model selection: {summary['selection']}.",
        "",
        *([f"Data: {summary['protocol']}", ""] if summary.get("protocol") else []),
        head,
        "|" + "---|" * (len(SCORES) + 2),
    ]
    for name, row in summary["folds"].items():
        cells = " | ".join(f"{100 * row[k]:.2f}" for k in SCORES)
        lines.append(f"| {name} | {row['num_utterances']} | {cells} |")
    mean = " | ".join(
        f"{100 * summary['mean'][k]:.2f} ± {100 * summary['std'][k]:.2f}" for k in SCORES
    )
    lines.append(f"| mean ± std | | {mean} |")
    emobox = summary["emobox"]["macro_f1"]
    lines += [
        "",
        f"Headline (EmoBox): macro-F1 {100 * emobox['mean']:.2f} ± {100 * emobox['std']:.2f}",
    ]
    if any(
        abs(emobox["folds"][f] - row["macro_f1"]) > 1e-12 for f, row in summary["folds"].items()
    ):
        lines.append(
            "(A fold lacks a class: EmoBox, like scikit-learn without a label list, averages "
            "macro-F1 over the classes that occur and UA over those with test samples; the "
            "table counts every class.)"
        )
    lines += [
        "",
        "Scores in %; std over folds with ddof=0. Each fold is scored over its whole "
        f"{summary['split']} split; pooled over all folds: "
        + ", ".join(f"{NAMES[k]} {100 * summary['pooled'][k]:.2f}" for k in SCORES)
        + ".",
    ]
    return "\n".join(lines) + "\n"
