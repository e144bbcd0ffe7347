import numpy as np
import pytest
import soundfile as sf
from corpora_fixtures import write_audio

from vesper_fairseq.corpora.audio import AudioSkip, check_signal, load_audio, to_16k_mono
from vesper_fairseq.corpora.audio_cache import AudioCache
from vesper_fairseq.corpora.splits import random_holdout, split_groups, stratified_holdout


def test_to_16k_mono_averages_channels_then_resamples():
    sr, n = 44100, 44100
    t = np.arange(n) / sr
    left, right = 0.4 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 300 * t)
    out = to_16k_mono(np.stack([left, right], axis=1).astype(np.float32), sr)
    assert out.dtype == np.float32 and out.shape == (16000,)
    ref = 0.3 * np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)
    assert np.max(np.abs(out[500:-500] - ref[500:-500])) < 1e-3


def test_16k_mono_is_untouched():
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1000, 1)).astype(np.float32)
    np.testing.assert_array_equal(to_16k_mono(x, 16000), x[:, 0])


@pytest.mark.parametrize(
    "n, reason",
    [(0, "zero-length"), (399, "too-short: 399 samples < 400"), (400, None)],
)
def test_check_signal_length(n, reason):
    x = np.full(n, 0.1, np.float32)
    if reason is None:
        check_signal(x)
    else:
        with pytest.raises(AudioSkip, match=reason):
            check_signal(x)


def test_check_signal_silence():
    with pytest.raises(AudioSkip, match="silent"):
        check_signal(np.full(16000, 3e-5, np.float32))
    check_signal(np.full(16000, 1e-3, np.float32))


def test_load_audio_reasons(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"not a riff file at all" * 4)
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 64)
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    cases = {
        "absent.wav": "missing",
        "empty.wav": "empty",
        "junk.wav": "unreadable",
        "junk.mp4": "unreadable",
    }
    for name, reason in cases.items():
        with pytest.raises(AudioSkip, match=f"^{reason}:"):
            load_audio(tmp_path / name)
    wav, sr = load_audio(tmp_path / "zero.wav")
    assert wav.shape == (0, 1) and sr == 16000


def test_audio_cache_refuses_two_sources_with_one_cache_name(tmp_path):
    root = tmp_path / "corpus"
    write_audio(root / "a.flac", 4800, sr=48000)
    write_audio(root / "a.wav", 4800, sr=48000)
    cache = AudioCache(root, tmp_path / "dest" / "wav16k")
    first = cache.prepare(root / "a.flac")
    assert first.converted == tmp_path / "dest/wav16k/a.wav" and first.n_samples == 1600
    with pytest.raises(AudioSkip, match="name-clash: a.wav and a.flac"):
        cache.prepare(root / "a.wav")


def test_stratified_holdout_takes_rounded_share_of_each_class():
    labels = ["a"] * 10 + ["b"] * 7 + ["c"] * 2
    held = stratified_holdout(labels, 0.2, seed=3)
    got = {c: sum(h for h, lab in zip(held, labels) if lab == c) for c in "abc"}
    assert got == {"a": 2, "b": 1, "c": 0}
    assert held == stratified_holdout(labels, 0.2, seed=3)
    assert held != stratified_holdout(labels, 0.2, seed=4)


def test_split_groups_is_disjoint_and_proportional():
    groups = [f"g{i}" for i in range(91) for _ in range(3)]
    assign = split_groups(groups, {"train": 0.8, "valid": 0.1, "test": 0.1}, seed=2013)
    counts = {s: sum(1 for v in assign.values() if v == s) for s in ["train", "valid", "test"]}
    assert counts == {"train": 73, "valid": 9, "test": 9}
    small = split_groups(["x", "y", "z"], {"train": 0.8, "valid": 0.1, "test": 0.1}, seed=0)
    assert sorted(small.values()) == ["test", "train", "valid"]
    with pytest.raises(ValueError, match="2 groups"):
        split_groups(["x", "y"], {"train": 0.8, "valid": 0.1, "test": 0.1}, seed=0)


def test_random_holdout_is_seeded():
    held = random_holdout(2000, 0.1, seed=1)
    assert held == random_holdout(2000, 0.1, seed=1)
    assert 150 < sum(held) < 250
