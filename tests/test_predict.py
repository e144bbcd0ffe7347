"""Classifying new audio: EmotionClassifier, long recordings, vesper-predict."""

import csv
import json
import re

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from classifier_fixtures import LABELS, long_recording, make_tiny_classifier, speech_like

from vesper_fairseq import EmotionClassifier
from vesper_fairseq.cli import predict as predict_cli
from vesper_fairseq.inference.classifier import AudioInputError
from vesper_fairseq.inference.windows import plan_windows
from vesper_fairseq.models.vesper_classifier import VesperClassifier, VesperClassifierConfig
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import WavLMConfig
from vesper_fairseq.safe_load import load_checkpoint

CROP = 64000  # 4-s training crop: 15 windows in 60 s at hop 4 s


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("predict") / "clf.pt", crop=CROP)


@pytest.fixture(scope="module")
def clf(checkpoint):
    return EmotionClassifier.from_checkpoint(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def reference(checkpoint):
    """The checkpoint's model built by hand from its raw state (our own test file)."""
    state = load_checkpoint(checkpoint)  # weights only, as every reader of the project
    cfg = state["cfg"]["model"]
    model = VesperClassifier(
        VesperClassifierConfig(hidden_dim=cfg["hidden_dim"], labels=cfg["labels"]),
        WavLMEncoder(WavLMConfig.from_dict(cfg["upstream"])),
        len(cfg["labels"]),
    )
    model.load_state_dict(state["model"], strict=True)
    model.eval()

    def probs(wave: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.from_numpy(np.ascontiguousarray(wave))[None])
        return torch.softmax(logits, -1)[0].double().numpy()

    return probs


def as_array(probabilities: dict) -> np.ndarray:
    return np.array([probabilities[c] for c in LABELS])


def test_windows_cover_the_file_with_the_training_crop():
    assert [(w.start, w.end) for w in plan_windows(500, 1000, 500)] == [(0, 500)]
    assert [(w.start, w.end) for w in plan_windows(2000, 1000, 500)] == [
        (0, 1000), (500, 1500), (1000, 2000)
    ]  # fmt: skip
    # a tail the hops leave uncovered gets a window ending at the last sample
    assert [(w.start, w.end) for w in plan_windows(2300, 1000, 1000)] == [
        (0, 1000), (1000, 2000), (1300, 2300)
    ]  # fmt: skip
    with pytest.raises(ValueError, match="positive"):
        plan_windows(100, 1000, 0)


def test_long_recording_windows_silence_and_aggregate(clf, reference, tmp_path):
    wave, silent_spans = long_recording()
    path = tmp_path / "long.wav"
    sf.write(path, wave, 16000, subtype="FLOAT")
    pred = clf.predict(path, hop=4.0)
    assert pred.duration == pytest.approx(60.0)
    assert [(s.start, s.end) for s in pred.segments] == [(4.0 * i, 4.0 * i + 4) for i in range(15)]
    inside = [any(a <= s.start and s.end <= b for a, b in silent_spans) for s in pred.segments]
    assert [s.silent for s in pred.segments] == inside and sum(inside) == 3
    window_probs = np.stack([reference(wave[int(s.start * 16000) : int(s.end * 16000)])
                             for s in pred.segments])  # fmt: skip
    for seg, expected in zip(pred.segments, window_probs):
        np.testing.assert_allclose(as_array(seg.probabilities), expected, atol=1e-5)
        assert seg.label == LABELS[int(expected.argmax())]
    speech = window_probs[~np.array(inside)].mean(axis=0)
    np.testing.assert_allclose(as_array(pred.probabilities), speech, atol=1e-5)
    assert np.abs(speech - window_probs.mean(axis=0)).max() > 1e-4  # silence left out matters
    assert pred.aggregate == "mean of 12 non-silent windows of 15"
    assert pred.label == LABELS[int(speech.argmax())]

    default = clf.plan(wave)  # hop: half a window
    assert [w.start for w in default] == [32000 * i for i in range(29)]
    first = clf.predict(path, segment=False)  # vesper-evaluate's first crop
    assert [(s.start, s.end) for s in first.segments] == [(0.0, 4.0)]
    np.testing.assert_allclose(as_array(first.probabilities), window_probs[0], atol=1e-5)
    assert "first 4 s only" in first.aggregate


def test_any_rate_and_channel_count_and_batches(clf, reference, tmp_path):
    stereo = np.stack([speech_like(2.5, 1), speech_like(2.5, 2, f0=200)], axis=1)
    stereo = soxr.resample(stereo, 16000, 44100).astype(np.float32)
    sf.write(tmp_path / "stereo.flac", stereo, 44100)
    from_file = clf.predict(tmp_path / "stereo.flac")
    from_array = clf.predict(stereo, sample_rate=44100)
    transposed = clf.predict(torch.from_numpy(stereo.T.copy()), sample_rate=44100)
    assert transposed.probabilities == from_array.probabilities
    mono16k = soxr.resample(stereo.mean(axis=1), 44100, 16000, quality="HQ")
    expected = reference(mono16k.astype(np.float32))
    np.testing.assert_allclose(as_array(from_array.probabilities), expected, atol=1e-5)
    np.testing.assert_allclose(as_array(from_file.probabilities), expected, atol=1e-4)  # FLAC

    clips = [speech_like(s, i) for i, s in enumerate((0.5, 3.0, 1.2, 2.0))]
    batch = clf.predict_batch(clips, sample_rate=16000, batch_size=3)  # padded, sorted batches
    for clip, pred in zip(clips, batch):
        assert pred.aggregate == "single window"
        np.testing.assert_allclose(as_array(pred.probabilities), reference(clip), atol=1e-5)
    with pytest.raises(ValueError, match=r"array input: too-short"):
        clf.predict(np.zeros(100, dtype=np.float32), sample_rate=16000)


def test_vesper_predict_files_folders_manifests(checkpoint, clf, tmp_path):
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    for i, seconds in enumerate((1.0, 6.0)):
        sf.write(audio / f"clip{i}.wav", speech_like(seconds, i), 16000)
    sf.write(audio / "sub" / "deep.flac", speech_like(1.5, 5), 16000)
    sf.write(audio / "sub" / "short.wav", np.zeros(200, dtype=np.float32), 16000)
    (audio / "broken.wav").write_bytes(b"RIFF not really a wav")
    (tmp_path / "list.tsv").write_text(f"{audio}\nclip0.wav\t16000\nsub/deep.flac\t24000\n")
    out = tmp_path / "pred.tsv"
    argv = [str(checkpoint), str(audio), str(tmp_path / "list.tsv"), "--out", str(out)]
    assert predict_cli.main(argv + ["--segments", "--quiet"]) == 0

    with open(out, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == ["file", "kind", "start", "end", "label"] + [
        f"p_{c}" for c in LABELS
    ] + ["windows", "silent", "aggregate"]
    files = [r for r in rows if r["kind"] == "file"]
    names = [r["file"].removeprefix(str(audio) + "/") for r in files]
    assert names == ["clip0.wav", "clip1.wav", "sub/deep.flac"]  # manifest rows not repeated
    long = [r for r in rows if r["kind"] == "window" and r["file"].endswith("clip1.wav")]
    assert [(r["start"], r["end"]) for r in long] == [("0.000", "4.000"), ("2.000", "6.000")]
    expected = clf.predict(audio / "clip1.wav")
    assert files[1]["label"] == expected.label
    assert files[1]["aggregate"] == "mean of 2 non-silent windows of 2"
    assert float(files[1]["p_hap"]) == pytest.approx(expected.probabilities["hap"], abs=1e-6)
    skipped = (tmp_path / "pred.tsv.skipped.tsv").read_text().splitlines()
    reasons = dict(line.split("\t") for line in skipped[1:])
    assert reasons[str(audio / "broken.wav")].startswith("unreadable")
    assert reasons[str(audio / "sub" / "short.wav")].startswith("too-short")

    assert predict_cli.main(argv[:3] + ["--out", str(tmp_path / "p.jsonl"), "--quiet"]) == 0
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["label"] for r in records] == [r["label"] for r in files]
    assert sum(records[1]["probabilities"].values()) == pytest.approx(1.0)
    assert predict_cli.main(argv[:3] + ["--out", str(tmp_path / "p.csv"), "--no-segment"]) == 0
    with open(tmp_path / "p.csv", newline="") as f:
        first_crop = list(csv.DictReader(f))
    assert first_crop[1]["windows"] == "1" and first_crop[1]["aggregate"].startswith("first 4 s")
    with pytest.raises(SystemExit):
        predict_cli.parse_args([str(checkpoint), str(audio), "--out", str(tmp_path / "p.txt")])


def test_vesper_predict_reports_and_skips_truncated_files(checkpoint, clf, tmp_path):
    """A WAV cut short (interrupted copy) is not classified as the shorter audio libsndfile
    reads from it: it is listed with the reason, like an unreadable file."""
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "whole.wav", speech_like(2.0, 3), 16000)
    data = (audio / "whole.wav").read_bytes()
    for size in (30, 44, 3000, 40000):  # in the header, right after it, mid-audio (twice)
        (audio / f"cut{size}.wav").write_bytes(data[:size])
    out = tmp_path / "pred.tsv"
    assert predict_cli.main([str(checkpoint), str(audio), "--out", str(out), "--quiet"]) == 0
    with open(out, newline="") as f:
        assert [r["file"] for r in csv.DictReader(f, delimiter="\t")] == [str(audio / "whole.wav")]
    skipped = (tmp_path / "pred.tsv.skipped.tsv").read_text().splitlines()
    audio_reason = "truncated: the header declares 64000 bytes of audio, the file holds {}"
    assert dict(line.split("\t") for line in skipped[1:]) == {
        str(audio / "cut30.wav"): "truncated: the file ends inside its header, after 30 bytes "
        "of the 64044 it declares",
        str(audio / "cut44.wav"): audio_reason.format(0),
        str(audio / "cut3000.wav"): audio_reason.format(2956),
        str(audio / "cut40000.wav"): audio_reason.format(39956),
    }
    with pytest.raises(AudioInputError, match="cut3000.wav: truncated: the header declares"):
        clf.predict(audio / "cut3000.wav")


def test_half_precision_is_for_gpus(checkpoint):
    with pytest.raises(ValueError, match="dtype float16 is for GPUs"):
        EmotionClassifier.from_checkpoint(checkpoint, device="cpu", dtype="float16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        EmotionClassifier.from_checkpoint(checkpoint, device="cpu", dtype="fp8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_gpu_predictions_match_cpu(checkpoint, clf, dtype):
    """On a GPU, in float32 and in half precision: the CPU's windows, labels and (within the
    half types' rounding) probabilities, for a long input and a padded batch."""
    gpu = EmotionClassifier.from_checkpoint(checkpoint, device="cuda", dtype=dtype)
    tolerance = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 3e-2}[dtype]
    wave, _ = long_recording(seed=3)
    clips = [wave[: 16000 * 20], speech_like(0.5, 1), speech_like(2.5, 2)]
    for ours, ref in zip(gpu.predict_batch(clips, 16000), clf.predict_batch(clips, 16000)):
        assert [s.silent for s in ours.segments] == [s.silent for s in ref.segments]
        np.testing.assert_allclose(
            as_array(ours.probabilities), as_array(ref.probabilities), atol=tolerance
        )


@pytest.mark.parametrize(
    "key, tamper, problem",
    [
        ("head.classifier.weight", lambda t: t * float("nan"), "holds NaN or infinite values"),
        ("head.projection.weight", lambda t: t.to(torch.int32), "has dtype torch.int32; the c"),
        ("upstream.post_extract_proj.weight", lambda t: t / 0, "holds NaN or infinite values"),
    ],
)
def test_tampered_classifier_weights_are_refused(tmp_path, capsys, key, tamper, problem):
    """Predicting and scoring with NaN or integer weights would be silently wrong."""
    from vesper_fairseq.cli import evaluate

    path = make_tiny_classifier(tmp_path / "checkpoint_best.pt")
    state = torch.load(path, weights_only=True)
    state["model"][key] = tamper(state["model"][key])
    torch.save(state, path)
    named = f"{path}: (upstream\\.)?{key.removeprefix('upstream.')} {problem}"
    with pytest.raises(ValueError, match=named):
        EmotionClassifier.from_checkpoint(path)
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", speech_like(1.0), 16000)
    (data / "test.tsv").write_text(f"{data}\na.wav\t16000\n")
    (data / "test.emo").write_text("ang\n")
    (data / "dict.emo.txt").write_text("".join(f"{label} 1\n" for label in LABELS))
    assert evaluate.main([str(path), "--data", str(data), "--out", str(tmp_path / "e")]) == 2
    assert re.search(named, capsys.readouterr().err)
