"""Speech emotion recognition scores from a confusion matrix indexed [true, predicted].

Scores are computed once over a whole evaluation set (never averaged over batches):
  wa        accuracy (weighted accuracy in SER papers)
  ua        mean per-class recall (unweighted accuracy)
  wf1       support-weighted F1
  macro_f1  unweighted mean F1 (the EmoBox headline)

Classes without true samples: by default they count in UA and macro-F1 with recall 0 and F1 0,
exactly as scikit-learn does with an explicit `labels=` list and `zero_division=0`. With
`present_only=True` UA and macro-F1 average only over classes that have true samples (common
SER practice when a fold lacks a class). WA and WF1 do not depend on that choice.
"""

import numpy as np
import torch


def as_confusion_array(confusion) -> np.ndarray:
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.detach().cpu().numpy()
    conf = np.asarray(confusion)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1] or conf.shape[0] == 0:
        raise ValueError(f"confusion matrix must be square (C, C), got shape {conf.shape}")
    if not np.issubdtype(conf.dtype, np.number) or (conf < 0).any():
        raise ValueError("confusion matrix must hold non-negative counts")
    if not np.array_equal(conf, np.round(conf)):
        raise ValueError("confusion matrix must hold whole counts")
    return conf.astype(np.float64)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def per_class_scores(confusion) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 (0 where undefined) and support (true count)."""
    conf = as_confusion_array(confusion)
    tp = np.diag(conf)
    support = conf.sum(axis=1)
    predicted = conf.sum(axis=0)
    return {
        "precision": _safe_divide(tp, predicted),
        "recall": _safe_divide(tp, support),
        "f1": _safe_divide(2 * tp, support + predicted),
        "support": support,
    }


def emotion_scores(confusion, present_only: bool = False) -> dict[str, float]:
    """WA, UA, WF1 and macro-F1 as fractions in [0, 1]; see the module docstring."""
    scores = per_class_scores(confusion)
    support = scores["support"]
    total = support.sum()
    if total == 0:
        raise ValueError("confusion matrix is empty: no samples to score")
    averaged = support > 0 if present_only else np.ones_like(support, dtype=bool)
    return {
        "wa": float(np.trace(as_confusion_array(confusion)) / total),
        "ua": float(scores["recall"][averaged].mean()),
        "wf1": float((scores["f1"] * support).sum() / total),
        "macro_f1": float(scores["f1"][averaged].mean()),
    }


def emobox_scores(confusion) -> dict[str, float]:
    """The scores as EmoBox's EmoEval computes them: scikit-learn without a label list, so UA
    (balanced accuracy) averages the classes with true samples and macro-F1 the classes that
    occur as truth or prediction. Equal to :func:`emotion_scores` when every class has true
    samples."""
    scores = per_class_scores(confusion)
    seen = (scores["support"] > 0) | (as_confusion_array(confusion).sum(axis=0) > 0)
    return {
        **emotion_scores(confusion, present_only=True),
        "macro_f1": float(scores["f1"][seen].mean()),
    }


def confusion_matrix(targets, preds, num_classes: int):
    """Counts [true, predicted]; a LongTensor for tensor inputs, else an int64 numpy array."""
    as_torch = isinstance(targets, torch.Tensor)
    if as_torch:
        t, p = targets.reshape(-1).long(), preds.reshape(-1).long().to(targets.device)
    else:
        t, p = np.asarray(targets).reshape(-1), np.asarray(preds).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"targets ({t.shape[0]}) and preds ({p.shape[0]}) differ in length")
    for name, x in (("targets", t), ("preds", p)):
        if len(x) and (int(x.min()) < 0 or int(x.max()) >= num_classes):
            raise ValueError(
                f"{name} must lie in [0, {num_classes}), got {int(x.min())}..{int(x.max())}"
            )
    if as_torch:
        flat = torch.bincount(t * num_classes + p, minlength=num_classes**2)
    else:
        flat = np.bincount((t * num_classes + p).astype(np.int64), minlength=num_classes**2)
    return flat.reshape(num_classes, num_classes)
