import numpy as np
import pytest
import soundfile as sf
from corpora_fixtures import read_lines, read_tsv

from vesper_fairseq.corpora import synthetic


def frame_stats(x: np.ndarray, sr: int = 16000):
    """RMS of active frames, and the autocorrelation F0 (Hz) of each active frame."""
    hop, size = 320, 640
    frames = np.stack([x[i : i + size] for i in range(0, len(x) - size, hop)])
    rms = np.sqrt(np.mean(frames**2, axis=1))
    active = frames[rms > 0.3 * rms.max()]
    f0 = []
    lo, hi = sr // 450, sr // 60
    for f in active:
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[size - 1 :]
        f0.append(sr / (lo + int(np.argmax(ac[lo:hi]))))
    return rms[rms > 0.3 * rms.max()].mean(), np.array(f0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    paths = synthetic.generate(root, n_speakers=4, clips_per_class=5, seed=0)
    return root, paths


def test_generation_is_deterministic(corpus, tmp_path):
    root, paths = corpus
    assert len(paths) == 4 * 4 * 5
    again = synthetic.generate(tmp_path / "a", n_speakers=4, clips_per_class=5, seed=0)
    other = synthetic.generate(tmp_path / "b", n_speakers=4, clips_per_class=5, seed=1)
    for p, q, r in zip(paths, again, other):
        assert p.relative_to(root) == q.relative_to(tmp_path / "a")
        assert p.read_bytes() == q.read_bytes()
        assert p.read_bytes() != r.read_bytes()


def test_clips_are_short_voiced_16k_speech_like(corpus):
    _, paths = corpus
    for p in paths[::7]:
        x, sr = sf.read(p)
        assert sr == 16000 and x.ndim == 1 and 2.0 <= len(x) / sr <= 3.0
        assert 0.005 < np.abs(x).max() < 1.0
        frame_rms = np.sqrt(np.mean(x[: len(x) // 320 * 320].reshape(-1, 320) ** 2, axis=1))
        assert (frame_rms < 0.05 * frame_rms.max()).mean() > 0.1  # pauses between syllables


def test_classes_differ_in_pitch_range_and_loudness(corpus):
    root, _ = corpus
    stats = {}
    for emo in synthetic.CLASSES:
        rms, f0 = [], []
        for p in sorted(root.glob(f"wav/*/*_{emo}_*.wav")):
            r, f = frame_stats(sf.read(p)[0])
            rms.append(r)
            f0.append(f)
        semitones = [12 * np.log2(f / np.median(f)) for f in f0]
        stats[emo] = {
            "rms_db": 20 * np.log10(np.mean(rms)),
            "f0": np.mean([np.median(f) for f in f0]),
            "range": np.mean([np.percentile(s, 90) - np.percentile(s, 10) for s in semitones]),
        }
    s = {k: {emo: stats[emo][k] for emo in stats} for k in ["rms_db", "f0", "range"]}
    assert s["rms_db"]["ang"] > s["rms_db"]["hap"] + 2 > s["rms_db"]["neu"] + 4
    assert s["rms_db"]["neu"] > s["rms_db"]["sad"] + 5
    assert min(s["f0"]["ang"], s["f0"]["hap"]) > 1.15 * s["f0"]["neu"]
    assert s["f0"]["neu"] > 1.08 * s["f0"]["sad"]
    assert s["range"]["hap"] > s["range"]["neu"] > s["range"]["sad"]


def test_manifests_hold_out_speakers(corpus, tmp_path):
    root, _ = corpus
    summary = synthetic.build(root, tmp_path, n_test_speakers=1, n_valid_speakers=1)
    spk = {s: read_lines(tmp_path / f"{s}.spk") for s in ["train", "valid", "test"]}
    assert set(spk["test"]) == {"spk03"} and set(spk["valid"]) == {"spk02"}
    assert set(spk["train"]) == {"spk00", "spk01"}
    tsv_root, rows = read_tsv(tmp_path / "test.tsv")
    assert tsv_root == str(root) and len(rows) == 20
    assert read_lines(tmp_path / "test.emo") == [r.split("_")[1] for r, _ in rows]
    assert read_lines(tmp_path / "dict.emo.txt") == ["ang 10", "hap 10", "neu 10", "sad 10"]
    assert "held-out speakers" in summary
