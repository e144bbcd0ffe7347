"""Feature extraction: chunking, HuBERT-style outputs aligned with the manifest, resume."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from fairseq_runs import BIN, run, write_audio_manifest

from vesper_fairseq.cli import extract as extract_cli
from vesper_fairseq.corpora.audio import load_audio, to_16k_mono
from vesper_fairseq.features import chunk_plan, extract_layers
from vesper_fairseq.features import dump as feature_dump
from vesper_fairseq.formats import load_encoder
from vesper_fairseq.formats.vesper_folder import save_vesper_folder
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

LAYERS = 5  # tiny encoder: 4 layers, layer_results 0..4


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("enc") / "vesper"
    save_vesper_folder(WavLMEncoder(tiny_wavlm_config(encoder_layer_norm=False)).eval(), folder)
    return folder


@pytest.fixture(scope="module")
def encoder(encoder_dir):
    return load_encoder(encoder_dir)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_audio_manifest(tmp_path_factory.mktemp("data"), {"train": 5}, seconds=(0.3, 2.5))


def long_wave(seconds=7.0, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 150 * t) + 0.1 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def reference(encoder, wave):
    """Unchunked layer_results of one waveform, as the encoder itself computes them."""
    with torch.no_grad():
        return [x[0] for x in encoder.layer_results(torch.from_numpy(wave)[None])]


def test_unchunked_extraction_is_layer_results(encoder):
    wave = long_wave(2.0)
    feats = extract_layers(encoder, wave)
    assert len(feats) == LAYERS and feats[0].shape == (encoder.cfg.num_frames(len(wave)), 64)
    for x, y in zip(feats, reference(encoder, wave)):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-5)


def test_chunks_are_frame_aligned_and_cover_every_frame_once(encoder):
    n = len(long_wave())
    plan = chunk_plan(encoder, n, max_frames=50)
    assert len(plan) == 7
    assert [c.start for c in plan] == list(range(0, 350, 50)) and plan[-1].end == 349
    for c in plan:  # input: frames [start - 8, end + 8) (context conv_pos // 2 = 8), clipped
        first, last = max(0, c.start - 8), min(349, c.end + 8)
        assert c.left == c.start - first and c.sample_start == 320 * first
        assert c.sample_end == 320 * (last - 1) + 400 <= n  # 400-sample receptive field


def test_chunked_layer0_equals_unchunked_on_a_long_file(encoder):
    """CNN frames are cut at 320-sample boundaries with the 80-sample overhang and each
    chunk carries conv_pos // 2 frames of context: the positional conv's whole span. Layer 0
    (and the CNN below it) is then exact; deeper layers attend over the chunk only."""
    wave = long_wave()
    full = reference(encoder, wave)
    chunked = extract_layers(encoder, wave, max_chunk=1.0, batch_size=3)
    assert len(chunk_plan(encoder, len(wave), 50)) > 1
    torch.testing.assert_close(chunked[0], full[0], rtol=0, atol=1e-5)
    assert (chunked[-1] - full[-1]).abs().max() > 1e-3  # the statement is only about layer 0
    short_context = extract_layers(encoder, wave, max_chunk=1.0, context=2)
    assert (short_context[0] - full[0]).abs().max() > 1e-3  # context matters


def test_file_within_one_chunk_is_exact_at_every_layer(encoder):
    wave = long_wave(1.5)
    for x, y in zip(extract_layers(encoder, wave, max_chunk=2.0), reference(encoder, wave)):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-5)


def extract(encoder_dir, out, *args):
    return extract_cli.main(["--encoder", str(encoder_dir), "--out", str(out), *args])


def manifest_rows(data):
    lines = (data / "train.tsv").read_text().splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


def test_frame_features_align_with_manifest_rows(encoder_dir, encoder, data, tmp_path):
    extract(encoder_dir, tmp_path, "--manifest", str(data / "train.tsv"), "--layers", "0,4",
            "--dtype", "float32", "--batch-size", "3", "--max-chunk", "0.5")  # fmt: skip
    prefix = tmp_path / "train_0_1"
    root, rows = manifest_rows(data)
    assert (tmp_path / "train_0_1.tsv").read_text() == (data / "train.tsv").read_text()
    lengths = [int(x) for x in (tmp_path / "train_0_1.len").read_text().split()]
    assert lengths == [encoder.cfg.num_frames(int(n)) for _, n in rows]
    done = json.loads((tmp_path / "train_0_1.done.json").read_text())
    assert done["layers"] == [0, 4] and done["frames"] == sum(lengths)
    arrays = {layer: np.load(f"{prefix}.layer{layer}.npy") for layer in (0, 4)}
    assert arrays[4].shape == (sum(lengths), 64) and arrays[4].dtype == np.float32
    offsets = np.cumsum([0, *lengths])
    for i, (name, _) in enumerate(rows):
        wave, _ = sf.read(f"{root}/{name}", dtype="float32")
        expected = extract_layers(encoder, wave, layers=[0, 4], max_chunk=0.5)
        for layer, ref in zip((0, 4), expected):
            got = arrays[layer][offsets[i] : offsets[i + 1]]
            np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=1e-5)


def test_utterance_features_are_means_over_real_frames(encoder_dir, encoder, data, tmp_path):
    extract(encoder_dir, tmp_path, "--manifest", str(data / "train.tsv"), "--layers", "all",
            "--granularity", "utterance", "--name", "utt")  # fmt: skip
    root, rows = manifest_rows(data)
    matrix = np.load(tmp_path / "utt_0_1.layer2.npy")
    assert matrix.shape == (len(rows), 64) and matrix.dtype == np.float16
    for i, (name, _) in enumerate(rows):
        wave, _ = sf.read(f"{root}/{name}", dtype="float32")
        mean = reference(encoder, wave)[2].mean(0).numpy()
        np.testing.assert_allclose(matrix[i], mean, rtol=1e-2, atol=2e-3)
    assert len((tmp_path / "utt_0_1.len").read_text().split()) == len(rows)


def test_interrupted_extraction_resumes_to_the_same_result(encoder_dir, data, tmp_path, caplog):
    args = [
        "--manifest",
        str(data / "train.tsv"),
        "--layers",
        "1,3",
        "--batch-size",
        "1",
        "--save-every",
        "0",
    ]
    extract(encoder_dir, tmp_path / "fresh", *args)

    real_load, calls = feature_dump.load_wave, []

    def dying_load(path, expected):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt  # killed while reading the 4th file
        return real_load(path, expected)

    out = tmp_path / "resumed"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(feature_dump, "load_wave", dying_load)
        with pytest.raises(KeyboardInterrupt):
            extract(encoder_dir, out, *args)
    # nothing that looks finished: only the partial folder
    assert sorted(p.name for p in out.iterdir()) == ["train_0_1.partial"]
    progress = json.loads((out / "train_0_1.partial" / "progress.json").read_text())
    assert 0 < progress["next_row"] < 5

    with pytest.raises(SystemExit, match="other settings"):
        extract(encoder_dir, out, *args[:3], "0,2", *args[4:])
    caplog.set_level("INFO")
    extract(encoder_dir, out, *args)
    assert f"at row {progress['next_row']} of 5" in caplog.text
    for name in ("train_0_1.layer1.npy", "train_0_1.layer3.npy"):
        np.testing.assert_array_equal(np.load(out / name), np.load(tmp_path / "fresh" / name))
    assert not (out / "train_0_1.partial").exists()
    extract(encoder_dir, out, *args)
    assert "already finished" in caplog.text


def test_audio_files_shards_and_bad_input(encoder_dir, data, tmp_path):
    root, rows = manifest_rows(data)
    files = [f"{root}/{name}" for name, _ in rows]
    for shard in (0, 1):
        extract(encoder_dir, tmp_path, "--audio", *files, "--layers", "0",
                "--shard", str(shard), "--num-shards", "2")  # fmt: skip
    tsvs = [(tmp_path / f"audio_{s}_2.tsv").read_text().splitlines() for s in (0, 1)]  # folder
    assert [r.split("\t")[0] for r in tsvs[0][1:] + tsvs[1][1:]] == [n for n, _ in rows]
    with pytest.raises(SystemExit, match="encoder has layers 0..4"):
        extract(encoder_dir, tmp_path, "--audio", files[0], "--layers", "5")

    bad = tmp_path / "bad.tsv"
    bad.write_text(f"{root}\n{rows[0][0]}\t{int(rows[0][1]) + 7}\n")
    with pytest.raises(SystemExit, match=f"{rows[0][0]}: the manifest says"):
        extract(encoder_dir, tmp_path, "--manifest", str(bad))


def test_any_rate_and_channel_count_is_converted_like_the_manifest_scripts(
    encoder_dir, encoder, tmp_path
):
    wave = long_wave(1.5)
    stereo = soxr.resample(wave, 16000, 44100)[:, None] * np.array([[0.5, 1.5]], np.float32)
    sf.write(tmp_path / "clip.flac", stereo, 44100)
    extract(encoder_dir, tmp_path / "out", "--audio", str(tmp_path / "clip.flac"),
            "--layers", "0,4", "--dtype", "float32")  # fmt: skip
    converted = to_16k_mono(*load_audio(tmp_path / "clip.flac"))  # what corpora/ writes
    assert np.corrcoef(converted[1000:-1000], wave[1000:-1000])[0, 1] > 0.99
    ref = reference(encoder, converted)
    for layer in (0, 4):  # named after its input
        feats = np.load(tmp_path / "out" / f"clip_0_1.layer{layer}.npy")
        np.testing.assert_allclose(feats, ref[layer].numpy(), atol=1e-4)


def test_a_bad_input_stops_the_run_before_anything_is_written(encoder_dir, data, tmp_path):
    root, rows = manifest_rows(data)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(SystemExit, match="broken.wav: .*"):
        extract(encoder_dir, tmp_path / "a", "--audio", f"{root}/{rows[0][0]}", str(broken))
    missing = tmp_path / "missing.tsv"
    missing.write_text(f"{root}\n{rows[0][0]}\t{rows[0][1]}\nnot_there.wav\t16000\n")
    with pytest.raises(SystemExit, match="not_there.wav: file not found"):
        extract(encoder_dir, tmp_path / "b", "--manifest", str(missing))
    short = tmp_path / "short.tsv"  # a file cut after its manifest was made
    longer = int(rows[1][1]) + 7
    short.write_text(f"{root}\n{rows[0][0]}\t{rows[0][1]}\n{rows[1][0]}\t{longer}\n")
    with pytest.raises(SystemExit, match=f"{rows[1][0]}: the manifest says {longer} samples"):
        extract(encoder_dir, tmp_path / "c", "--manifest", str(short))
    assert not any((tmp_path / d).exists() for d in "abc")


def test_a_truncated_file_is_named_before_anything_is_written(encoder_dir, data, tmp_path):
    """libsndfile reads a WAV cut short as shorter audio; the pre-check reads its header."""
    root, rows = manifest_rows(data)
    full = (Path(root) / rows[0][0]).read_bytes()
    cut = tmp_path / "audio" / "cut.wav"
    cut.parent.mkdir()
    cut.write_bytes(full[:3000])
    expected = "cut.wav: truncated: the header declares .* bytes of audio, the file holds 2956"
    with pytest.raises(SystemExit, match=expected):
        extract(encoder_dir, tmp_path / "a", "--audio", str(cut))
    manifest = tmp_path / "cut.tsv"  # the manifest says the length libsndfile reads
    manifest.write_text(f"{cut.parent}\ncut.wav\t{sf.info(str(cut)).frames}\n")
    with pytest.raises(SystemExit, match=expected):
        extract(encoder_dir, tmp_path / "b", "--manifest", str(manifest))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_vesper_extract_command_line(encoder_dir, data, tmp_path):
    log = run([BIN / "vesper-extract", "--encoder", encoder_dir, "--manifest",
               data / "train.tsv", "--out", tmp_path, "--device", "cpu"], tmp_path)  # fmt: skip
    assert "wrote 5 rows" in log
    assert np.load(tmp_path / "train_0_1.layer4.npy").shape[1] == 64


def test_run_killed_while_publishing_the_arrays_resumes(encoder_dir, data, tmp_path):
    args = ["--manifest", str(data / "train.tsv"), "--layers", "1,3", "--save-every", "0"]
    extract(encoder_dir, tmp_path / "fresh", *args)
    real_replace, moved = feature_dump.os.replace, []

    def dying_replace(src, dst):
        if str(dst).endswith(".npy"):
            if moved:
                raise KeyboardInterrupt  # killed after the first array left the partial folder
            moved.append(dst)
        return real_replace(src, dst)

    out = tmp_path / "killed"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(feature_dump.os, "replace", dying_replace)
        with pytest.raises(KeyboardInterrupt):
            extract(encoder_dir, out, *args)
    assert (out / "train_0_1.layer1.npy").exists() and not (out / "train_0_1.done.json").exists()

    extract(encoder_dir, out, *args)
    assert (out / "train_0_1.done.json").exists() and not (out / "train_0_1.partial").exists()
    for name in ("train_0_1.layer1.npy", "train_0_1.layer3.npy"):
        np.testing.assert_array_equal(np.load(out / name), np.load(tmp_path / "fresh" / name))
