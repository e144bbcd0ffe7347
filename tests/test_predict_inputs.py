"""Inputs a user hands the classifier: integer PCM arrays, hops, one file named two ways, and
export options that do not apply to a classifier."""

import csv

import numpy as np
import pytest
import soundfile as sf
from classifier_fixtures import make_tiny_classifier, speech_like

from vesper_fairseq import EmotionClassifier
from vesper_fairseq.cli import export as export_cli
from vesper_fairseq.cli import predict as predict_cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("inputs") / "clf.pt", crop=16000)


@pytest.fixture(scope="module")
def clf(checkpoint):
    return EmotionClassifier.from_checkpoint(checkpoint, device="cpu")


@pytest.mark.parametrize("subtype, dtype", [("PCM_16", "int16"), ("PCM_32", "int32")])
def test_integer_arrays_are_the_samples_of_their_file(clf, tmp_path, subtype, dtype):
    """A quiet recording as a file and as the integers the file holds: one prediction, and the
    same silent windows (the silence floor is absolute, so the scale matters)."""
    wave = np.concatenate([speech_like(1.5, 3) * 0.05, np.zeros(16000, np.float32)])
    path = tmp_path / "quiet.wav"
    sf.write(path, wave, 16000, subtype=subtype)
    from_file = clf.predict(str(path))
    integers, _ = sf.read(path, dtype=dtype)
    from_array = clf.predict(integers, sample_rate=16000)
    assert [s.silent for s in from_array.segments] == [s.silent for s in from_file.segments]
    assert any(s.silent for s in from_file.segments)
    for label, p in from_file.probabilities.items():
        assert from_array.probabilities[label] == pytest.approx(p, abs=1e-5)


def test_hops_must_move_and_must_not_skip_audio(checkpoint, clf, tmp_path, capsys):
    wave = speech_like(3.0, 1)
    with pytest.raises(ValueError, match="hop 2.5 s is not between one sample and the window"):
        clf.predict(wave, sample_rate=16000, hop=2.5)
    argv = [str(checkpoint), "x.wav", "--out", str(tmp_path / "p.tsv"), "--hop", "0.00001"]
    with pytest.raises(SystemExit):
        predict_cli.main(argv)
    assert "--hop 1e-05 s is shorter than one sample" in capsys.readouterr().err


def test_one_file_named_two_ways_is_classified_once(checkpoint, tmp_path, monkeypatch):
    sf.write(tmp_path / "clip.wav", speech_like(1.0, 2), 16000)
    (tmp_path / "list.tsv").write_text(f"{tmp_path}\nclip.wav\t16000\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "p.tsv"
    argv = [str(checkpoint), "clip.wav", str(tmp_path / "clip.wav"), "list.tsv", "--out", str(out)]
    assert predict_cli.main(argv + ["--quiet"]) == 0
    with open(out, newline="") as f:
        assert len([r for r in csv.DictReader(f, delimiter="\t") if r["kind"] == "file"]) == 1


def test_layers_of_a_classifier_export_need_encoder_only(checkpoint, tmp_path):
    argv = [str(checkpoint), "--to", "onnx", "--layers", "0,1", "--out", str(tmp_path / "m.onnx")]
    with pytest.raises(SystemExit, match="add --encoder-only"):
        export_cli.main(argv)
    assert not (tmp_path / "m.onnx").exists()
