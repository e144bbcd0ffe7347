"""A fine-tuned classifier exported to transformers (checked through its real
audio-classification pipeline) and to ONNX (checked with onnxruntime)."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from classifier_fixtures import LABELS, make_tiny_classifier, speech_like

from vesper_fairseq import EmotionClassifier
from vesper_fairseq.cli import export as export_cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("predict_export") / "clf.pt")


@pytest.fixture(scope="module")
def clf(checkpoint):
    return EmotionClassifier.from_checkpoint(checkpoint)


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # transformers
def test_hf_export_is_the_same_classifier_in_the_transformers_pipeline(
    checkpoint, clf, tmp_path, monkeypatch
):
    from transformers import AutoModelForAudioClassification, pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "emotion-hf"
    export_cli.main([str(checkpoint), "--to", "hf", "--out", str(out)])
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "config.json", "model.safetensors", "preprocessor_config.json"]
    model, info = AutoModelForAudioClassification.from_pretrained(out, output_loading_info=True)
    assert type(model).__name__ == "WavLMForSequenceClassification"
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert model.config.id2label == dict(enumerate(LABELS))

    classify = pipeline("audio-classification", model=str(out), top_k=None, device="cpu")
    for seconds, seed in ((1.0, 1), (0.7, 2)):  # the training crop, and a shorter clip
        clip = speech_like(seconds, seed, f0=120 + 60 * seed)
        ours = clf.predict(clip, sample_rate=16000)
        theirs = {r["label"]: r["score"] for r in classify({"raw": clip, "sampling_rate": 16000})}
        assert sorted(theirs) == sorted(LABELS)
        for label in LABELS:
            assert theirs[label] == pytest.approx(ours.probabilities[label], abs=1e-4)
        assert max(theirs, key=theirs.get) == ours.label
    card = (out / "README.md").read_text()
    assert "| 3 | sad |" in card and "ua on `valid`: 0.6250" in card and "`manifests/fold1`" in card


def test_encoder_only_hf_export_keeps_the_encoder_format(checkpoint, tmp_path):
    out = tmp_path / "upstream-hf"
    export_cli.main([str(checkpoint), "--to", "hf", "--encoder-only", "--out", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["WavLMModel"] and not (out / "README.md").exists()


def test_vesper_predict_says_how_an_exported_folder_is_used(checkpoint, tmp_path, capsys):
    from vesper_fairseq.cli import predict

    clip = tmp_path / "a.wav"
    sf.write(clip, speech_like(1.0), 16000)
    hf, encoder = tmp_path / "emotion-hf", tmp_path / "upstream"
    export_cli.main([str(checkpoint), "--to", "hf", "--out", str(hf)])
    export_cli.main([str(checkpoint), "--to", "vesper", "--out", str(encoder)])
    for folder, says in [
        (hf, f'a transformers classifier folder (vesper-export --to hf), which is used through '
             f'transformers: pipeline("audio-classification", model="{hf}")'),
        (encoder, "an encoder folder (no classification head)"),
        (tmp_path, "a folder, not a checkpoint file"),
    ]:  # fmt: skip
        assert predict.main([str(folder), str(clip), "--out", str(tmp_path / "p.tsv")]) == 2
        assert f"{folder}: {says}" in capsys.readouterr().err


def padded_batch(clips):
    length = max(len(c) for c in clips)
    wave = np.zeros((len(clips), length), dtype=np.float32)
    pad = np.ones((len(clips), length), dtype=bool)
    for i, c in enumerate(clips):
        wave[i, : len(c)], pad[i, : len(c)] = c, False
    return wave, pad


def test_onnx_classifier_matches_pytorch(checkpoint, clf, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "emotion.onnx"
    export_cli.main([str(checkpoint), "--to", "onnx", "--out", str(out)])
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["labels"]) == LABELS and meta["crop_samples"] == "16000"
    clips = [speech_like(s, i) for i, s in enumerate((1.0, 0.45, 0.8))]
    cases = [[clips[0]], [clips[1]], clips]  # two lengths, then a padded batch
    for batch in cases:
        wave, pad = padded_batch(batch)
        probs, logits = session.run(None, {"waveform": wave, "padding_mask": pad})
        with torch.no_grad():
            ref = clf.model(torch.from_numpy(wave), torch.from_numpy(pad))
        np.testing.assert_allclose(logits, ref.numpy(), atol=1e-4)
        np.testing.assert_allclose(probs, torch.softmax(ref, -1).numpy(), atol=1e-4)
        for row, clip in zip(probs, batch):  # a padded row is the clip alone
            alone = clf.predict(clip, sample_rate=16000).probabilities
            np.testing.assert_allclose(row, [alone[c] for c in LABELS], atol=1e-4)


def test_onnx_encoder_selected_layers_match_pytorch(checkpoint, clf, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "encoder.onnx"
    argv = [str(checkpoint), "--to", "onnx", "--encoder-only", "--layers", "0,2"]
    export_cli.main(argv + ["--out", str(out)])
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert names == ["layer_0", "layer_2", "frame_padding_mask"]
    encoder = clf.model.upstream
    for batch in (
        [speech_like(0.6, 3)],
        [speech_like(1.3, 4)],
        [speech_like(0.6, 3), speech_like(1.3, 4)],
    ):
        wave, pad = padded_batch(batch)
        got = session.run(None, {"waveform": wave, "padding_mask": pad})
        with torch.no_grad():
            ref = encoder(torch.from_numpy(wave), torch.from_numpy(pad))
        real = ~ref.padding_mask.numpy()
        np.testing.assert_array_equal(got[2], ref.padding_mask.numpy())
        for layer, value in zip((0, 2), got[:2]):
            np.testing.assert_allclose(
                value[real], ref.layer_results[layer].numpy()[real], atol=1e-4
            )
    with pytest.raises(SystemExit, match="must lie in 0..2"):
        export_cli.main([str(checkpoint), "--to", "onnx", "--encoder-only", "--layers", "5",
                         "--out", str(tmp_path / "bad.onnx")])  # fmt: skip


def test_onnx_export_of_a_base_shaped_classifier_loads_in_onnxruntime(tmp_path):
    """Base's CNN (GroupNorm) and the encoder LayerNorm both hold their initial ones: torch's
    exporter shares such weights through Identity nodes, which onnxruntime refused."""
    import onnxruntime as ort

    base = make_tiny_classifier(tmp_path / "base.pt", extractor_mode="default")
    model = EmotionClassifier.from_checkpoint(base).model
    out = tmp_path / "base.onnx"
    export_cli.main([str(base), "--to", "onnx", "--out", str(out)])
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    wave, pad = padded_batch([speech_like(1.0, 1), speech_like(0.6, 2)])
    _, logits = session.run(None, {"waveform": wave, "padding_mask": pad})
    with torch.no_grad():
        ref = model(torch.from_numpy(wave), torch.from_numpy(pad))
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-4)
