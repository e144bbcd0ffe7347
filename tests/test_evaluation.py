import os
import struct

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, classification_report, f1_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from vesper_fairseq.evaluation.figures import plot_confusion
from vesper_fairseq.evaluation.reports import per_class_report
from vesper_fairseq.evaluation.scores import (
    confusion_matrix,
    emobox_scores,
    emotion_scores,
    per_class_scores,
)


@pytest.mark.parametrize("seed", range(10))
def test_emobox_scores_are_sklearn_without_a_label_list(seed):
    """EmoBox's EmoEval: accuracy_score, balanced_accuracy_score, f1_score(average='macro')."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(100 + seed)
    conf = random_confusion(rng, int(rng.integers(3, 8)))
    y_true, y_pred = labels_from_confusion(conf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the empty classes
        ua = balanced_accuracy_score(y_true, y_pred)
        macro_f1 = f1_score(y_true, y_pred, average="macro")
    scores = emobox_scores(conf)
    assert scores["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert scores["ua"] == pytest.approx(ua)
    assert scores["macro_f1"] == pytest.approx(macro_f1)


def labels_from_confusion(conf):
    y_true, y_pred = [], []
    for i, j in np.ndindex(conf.shape):
        y_true += [i] * int(conf[i, j])
        y_pred += [j] * int(conf[i, j])
    return np.array(y_true), np.array(y_pred)


def random_confusion(rng, num_classes):
    conf = rng.integers(0, 8, (num_classes, num_classes)) * (rng.random((num_classes,) * 2) < 0.6)
    if num_classes > 2:  # empty classes: one never true, one never true nor predicted
        conf[rng.integers(num_classes)] = 0
        k = rng.integers(num_classes)
        conf[k] = 0
        conf[:, k] = 0
    if conf.sum() == 0:
        conf[0, 0] = 1
    return conf


@pytest.mark.parametrize("seed", range(30))
def test_scores_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    num_classes = int(rng.integers(2, 9))
    conf = random_confusion(rng, num_classes)
    y_true, y_pred = labels_from_confusion(conf)
    labels = list(range(num_classes))
    kw = dict(labels=labels, zero_division=0)
    scores = emotion_scores(conf)
    assert scores["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert scores["ua"] == pytest.approx(recall_score(y_true, y_pred, average="macro", **kw))
    assert scores["wf1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted", **kw))
    assert scores["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", **kw))
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    # present_only: average over the classes that occur as true labels
    present = sorted(set(y_true.tolist()))
    kw = dict(labels=present, zero_division=0)
    only = emotion_scores(torch.tensor(conf), present_only=True)
    assert only["ua"] == pytest.approx(recall_score(y_true, y_pred, average="macro", **kw))
    assert only["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", **kw))
    assert only["wa"] == pytest.approx(scores["wa"]) and only["wf1"] == pytest.approx(scores["wf1"])


def test_hand_computed_example():
    conf = np.array([[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    scores = emotion_scores(conf)
    assert scores["wa"] == pytest.approx(0.5)
    assert scores["ua"] == pytest.approx((0.5 + 0.5) / 4)
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 4)
    assert emotion_scores(conf, present_only=True)["ua"] == pytest.approx(0.5)


def test_bad_confusions_fail_clearly():
    with pytest.raises(ValueError, match="square"):
        emotion_scores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="empty"):
        emotion_scores(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        emotion_scores(np.array([[1, -1], [0, 1]]))


def test_confusion_matrix_matches_sklearn_for_numpy_and_torch():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 6, 500), rng.integers(0, 6, 500)
    ref = sk_confusion_matrix(t, p, labels=list(range(7)))
    ours = confusion_matrix(t, p, 7)
    assert isinstance(ours, np.ndarray)
    np.testing.assert_array_equal(ours, ref)
    ours_t = confusion_matrix(torch.from_numpy(t), torch.from_numpy(p), 7)
    assert ours_t.dtype == torch.long
    np.testing.assert_array_equal(ours_t.numpy(), ref)
    with pytest.raises(ValueError, match="preds must lie"):
        confusion_matrix(t, p + 3, 7)
    with pytest.raises(ValueError, match="differ in length"):
        confusion_matrix(t, p[:-1], 7)


def test_per_class_report_matches_sklearn_numbers():
    rng = np.random.default_rng(3)
    conf = random_confusion(rng, 5)
    y_true, y_pred = labels_from_confusion(conf)
    names = ["ang", "neu", "hap", "sad", "fear"]
    ref = classification_report(
        y_true, y_pred, labels=range(5), target_names=names, output_dict=True, zero_division=0
    )
    text = per_class_report(conf, names)
    per_class = per_class_scores(conf)
    for i, name in enumerate(names):
        row = next(line.split() for line in text.splitlines() if line.split()[:1] == [name])
        values = [float(x) for x in row[1:4]] + [int(row[4])]
        expected = [ref[name][k] for k in ("precision", "recall", "f1-score")]
        np.testing.assert_allclose(values[:3], expected, atol=1e-4)
        assert values[3] == ref[name]["support"] == per_class["support"][i]
    for avg in ("macro avg", "weighted avg"):
        row = next(line for line in text.splitlines() if line.strip().startswith(avg))
        values = [float(x) for x in row.split()[2:5]]
        expected = [ref[avg][k] for k in ("precision", "recall", "f1-score")]
        np.testing.assert_allclose(values, expected, atol=1e-4)
    assert "UA" in text and "macro-F1" in text
    with pytest.raises(ValueError, match="labels"):
        per_class_report(conf, names[:3])


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_plot_confusion_writes_png(tmp_path):
    conf = np.array([[50, 3, 2, 1], [4, 60, 5, 0], [0, 0, 0, 0], [7, 1, 2, 40]])
    path = tmp_path / "confusion.png"
    plot_confusion(conf, ["ang", "neu", "hap", "sad"], str(path), title="IEMOCAP fold 1")
    width, height = png_size(path)
    assert 800 <= width <= 4000 and 400 <= height <= 3000 and width > height
    assert 10_000 < os.path.getsize(path) < 2_000_000
    assert sorted(os.listdir(tmp_path)) == ["confusion.png"]  # no temp file left
    many = np.random.default_rng(0).integers(0, 30, (7, 7))
    names = ["neutral", "anger", "joy", "sadness", "surprise", "disgust", "fear"]
    plot_confusion(torch.tensor(many), names, str(path))  # overwrite in place
    png_size(path)
    with pytest.raises(ValueError, match="labels"):
        plot_confusion(conf, ["a", "b"], str(tmp_path / "x.png"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot_confusion(conf, ["a", "b", "c", "d"], str(tmp_path / "missing" / "x.png"))
