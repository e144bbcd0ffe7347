"""Emotion fine-tuning: task, classifier and criterion (runs: test_finetuning_runs.py)."""

import numpy as np
import pytest
import soundfile as sf
import torch
from fairseq import metrics
from fairseq_runs import (
    REPO,
    make_tiny_teacher,
    write_audio_manifest,
)
from omegaconf import OmegaConf

from vesper_fairseq.criterions.emotion_cross_entropy import (
    EmotionCrossEntropyConfig,
    EmotionCrossEntropyCriterion,
    parse_class_weights,
)
from vesper_fairseq.data.labelled_audio import LabelFileError
from vesper_fairseq.evaluation.scores import confusion_matrix, emotion_scores
from vesper_fairseq.models.vesper_classifier import VesperClassifier, VesperClassifierConfig
from vesper_fairseq.modules.emotion_head import masked_mean
from vesper_fairseq.tasks.emotion_classification import (
    EmotionClassificationConfig,
    EmotionClassificationTask,
)

LABELS = ["ang", "hap", "neu", "sad"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """6 random clips (the third one too short to keep) with labels, and a tiny upstream."""
    root = tmp_path_factory.mktemp("labelled")
    data = write_audio_manifest(root / "data", {"train": 6}, seconds=(0.3, 0.8), seed=3)
    rows = (data / "train.tsv").read_text().splitlines()
    sf.write(data / "audio" / "short.wav", np.zeros(200, dtype=np.float32), 16000)
    rows.insert(3, "short.wav\t200")
    (data / "train.tsv").write_text("\n".join(rows) + "\n")
    labels = ["ang", "hap", "sad", "neu", "sad", "hap", "ang"]
    (data / "train.emo").write_text("\n".join(labels) + "\n")
    (data / "dict.emo.txt").write_text("".join(f"{c} 2\n" for c in LABELS))
    return {"data": data, "labels": labels, "upstream": make_tiny_teacher(root / "up.pt")}


def make_task(data, **overrides):
    cfg = dict(data=str(data), seed=1, max_sample_size=16000)
    cfg.update(overrides)
    return EmotionClassificationTask.setup_task(
        OmegaConf.structured(EmotionClassificationConfig(**cfg))
    )


def make_model(task, upstream, **overrides):
    cfg = OmegaConf.structured(VesperClassifierConfig(upstream_path=str(upstream), **overrides))
    return VesperClassifier.build_model(cfg, task)


def batch(task, split="train"):
    task.load_dataset(split)
    dataset = task.dataset(split)
    return dataset.collater([dataset[i] for i in range(len(dataset))])


def test_rows_skipped_as_too_short_drop_their_labels(small):
    task = make_task(small["data"], min_sample_size=400)
    task.load_dataset("train")
    dataset = task.dataset("train")
    kept = [i for i in range(7) if i != 2]  # tsv row 2 is short.wav
    assert len(dataset) == 6 and list(dataset.dataset.manifest_rows) == kept
    assert [LABELS[t] for t in dataset.targets] == [small["labels"][i] for i in kept]
    assert "short.wav" not in dataset.paths
    sample = batch(task)
    for i, target in zip(sample["id"].tolist(), sample["target"].tolist()):
        assert LABELS[target] == small["labels"][kept[i]]
    assert sample["net_input"]["padding_mask"].any()  # a padded batch of raw crops


def test_audio_at_another_rate_is_refused(small):
    with pytest.raises(ValueError, match="task.sample_rate=8000: WavLM encoders take 16000 Hz"):
        make_task(small["data"], sample_rate=8000)


def test_label_errors_name_the_file_and_line(small, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.tsv", "dict.emo.txt"):
        (data / name).write_text((small["data"] / name).read_text())
    labels = list(small["labels"])
    labels[4] = "bored"
    (data / "train.emo").write_text("\n".join(labels) + "\n")
    with pytest.raises(LabelFileError, match=r"train\.emo, line 5: label 'bored' is not in"):
        make_task(data).load_dataset("train")
    (data / "train.emo").write_text("\n".join(labels[:-1]) + "\n")
    with pytest.raises(LabelFileError, match=r"train\.emo: 6 labels for 7 manifest rows"):
        make_task(data).load_dataset("train")
    (data / "dict.emo.txt").write_text("ang 3\nhap\n")
    with pytest.raises(LabelFileError, match=r"dict\.emo\.txt, line 2: expected 'label count'"):
        make_task(data)


def test_masked_mean_ignores_padding():
    x = torch.randn(2, 5, 3)
    pad = torch.tensor([[False] * 5, [False, False, True, True, True]])
    out = masked_mean(x, pad)
    torch.testing.assert_close(out[1], x[1, :2].mean(0))
    torch.testing.assert_close(out[0], x[0].mean(0))


def test_classifier_output_does_not_depend_on_the_batch(small):
    task = make_task(small["data"])
    model = make_model(task, small["upstream"]).eval()
    weights = model.layer_weights()
    assert len(weights) == model.upstream.num_layers + 1
    assert weights == pytest.approx([1 / len(weights)] * len(weights))
    sample = batch(task)
    net_input = sample["net_input"]
    batched = model(**net_input)
    for i in range(batched.size(0)):
        length = int((~net_input["padding_mask"][i]).sum())
        alone = model(net_input["source"][i : i + 1, :length])
        torch.testing.assert_close(batched[i : i + 1], alone, rtol=1e-4, atol=1e-5)


def train_steps(model, task, steps=3):
    sample = batch(task)
    criterion = EmotionCrossEntropyCriterion(EmotionCrossEntropyConfig(), task)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.5)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss, _, _ = criterion(model, sample)
        loss.backward()
        optimizer.step()
    return params


def test_frozen_upstream_stays_fixed_and_in_eval_mode(small):
    task = make_task(small["data"])
    model = make_model(task, small["upstream"])
    before = {k: v.clone() for k, v in model.upstream.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    params = train_steps(model, task)
    assert {id(p) for p in params} == {id(p) for p in model.head.parameters()}
    assert not any(m.training for m in model.upstream.modules())
    assert model.head.training
    for key, value in model.upstream.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert any(not torch.equal(v, head_before[k]) for k, v in model.head.state_dict().items())


def test_unfreeze_top_k_trains_only_the_top_layers(small):
    task = make_task(small["data"])
    model = make_model(task, small["upstream"], unfreeze_top_k=1)
    layers = model.upstream.encoder.layers
    before = {k: v.clone() for k, v in model.upstream.state_dict().items()}
    params = train_steps(model, task)
    expected = list(model.head.parameters()) + list(layers[-1].parameters())
    assert {id(p) for p in params} == {id(p) for p in expected}
    assert layers[-1].training and not any(layer.training for layer in layers[:-1])
    assert not model.upstream.feature_extractor.training
    changed = {k for k, v in model.upstream.state_dict().items() if not torch.equal(v, before[k])}
    top = f"encoder.layers.{len(layers) - 1}."
    assert changed and all(k.startswith(top) for k in changed), changed
    with pytest.raises(ValueError, match="unfreeze_top_k=9"):
        make_model(task, small["upstream"], unfreeze_top_k=9)


def test_classifier_rebuilds_from_its_cfg_without_the_upstream_file(small, tmp_path):
    task = make_task(small["data"])
    model = make_model(task, small["upstream"]).eval()
    cfg = OmegaConf.create(OmegaConf.to_container(model.cfg))
    assert cfg.upstream["encoder_layers"] == 4 and list(cfg.labels) == LABELS
    cfg.upstream_path = str(tmp_path / "gone.pt")
    again = VesperClassifier.build_model(cfg, task).eval()
    again.load_state_dict(model.state_dict())
    source = batch(task)["net_input"]
    torch.testing.assert_close(again(**source), model(**source))
    other = tmp_path / "other"
    other.mkdir()
    (other / "dict.emo.txt").write_text("neu 1\nsad 1\n")
    with pytest.raises(ValueError, match="trained on labels"):
        VesperClassifier.build_model(cfg, make_task(other))


def test_confusion_sums_over_batches_before_scoring():
    # per-batch scores averaged would differ from whole-set scores on these two batches
    batches = [([0, 0, 0, 1], [0, 0, 1, 1]), ([1, 2, 2, 3, 3, 3], [1, 2, 0, 3, 0, 0])]
    outputs = []
    for targets, preds in batches:
        conf = confusion_matrix(np.array(targets), np.array(preds), 4)
        log = {f"_conf_{i}_{j}": int(conf[i, j]) for i in range(4) for j in range(4)}
        outputs.append({**log, "loss": 1.0, "sample_size": len(targets), "nsentences": 1})
    with metrics.aggregate(new_root=True) as agg:
        EmotionCrossEntropyCriterion.reduce_metrics(outputs)
        stats = agg.get_smoothed_values()
    targets = sum((t for t, _ in batches), [])
    preds = sum((p for _, p in batches), [])
    whole = emotion_scores(confusion_matrix(np.array(targets), np.array(preds), 4))
    for key in ("wa", "ua", "wf1", "macro_f1"):
        assert stats[key] == pytest.approx(whole[key], abs=1e-4), key
    assert not any(key.startswith("_conf") for key in stats)  # cells stay out of the logs
    per_batch = [emotion_scores(confusion_matrix(np.array(t), np.array(p), 4)) for t, p in batches]
    assert abs(np.mean([s["ua"] for s in per_batch]) - whole["ua"]) > 0.05


def test_class_weights():
    torch.testing.assert_close(
        parse_class_weights("balanced", [10, 30]), torch.tensor([2.0, 2 / 3])
    )
    torch.testing.assert_close(parse_class_weights("1,0.5", [1, 1]), torch.tensor([1.0, 0.5]))
    assert parse_class_weights(None, [1, 1]) is None
    with pytest.raises(ValueError, match="need 3 non-negative weights"):
        parse_class_weights("1,2", [1, 1, 1])


def test_unfrozen_upstream_dropout_follows_the_mode(small):
    task = make_task(small["data"])
    model = make_model(task, small["upstream"], freeze_upstream=False)
    model.train()
    assert model.upstream.encoder.training
    assert not model.upstream.feature_extractor.conv_layers[0][0].weight.requires_grad
    assert model.upstream.encoder.layers[0].fc1.weight.requires_grad
    model.eval()
    assert not any(m.training for m in model.modules())


def test_upstream_dropout_keeps_the_frozen_upstream_in_train_mode(small):
    task = make_task(small["data"])
    model = make_model(task, small["upstream"], upstream_dropout=True)
    before = {k: v.clone() for k, v in model.upstream.state_dict().items()}
    params = train_steps(model, task)
    assert {id(p) for p in params} == {id(p) for p in model.head.parameters()}
    assert model.upstream.training and model.upstream.encoder.layers[0].training
    for key, value in model.upstream.state_dict().items():
        assert torch.equal(value, before[key]), key
    net_input = batch(task)["net_input"]
    first = model.extract_layers(**net_input).layer_results[-1]
    again = model.extract_layers(**net_input).layer_results[-1]
    assert not first.requires_grad and not torch.equal(first, again)  # dropout is active
    model.eval()
    first = model.extract_layers(**net_input).layer_results[-1]
    assert torch.equal(first, model.extract_layers(**net_input).layer_results[-1])
    configs = REPO / "examples" / "finetuning"
    for name in ("iemocap", "meld", "cremad"):
        cfg = OmegaConf.load(configs / f"{name}.yaml")
        assert cfg.model.upstream_dropout and cfg.optimizer.weight_decay == 0.01, name
