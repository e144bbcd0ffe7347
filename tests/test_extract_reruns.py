"""vesper-extract outputs record what made them: reruns with other settings or another encoder
are refused (--overwrite starts over), resumed runs write the same bytes, one writer per shard."""

import json
import os
import subprocess

import pytest
import torch
from fairseq_runs import write_audio_manifest

from vesper_fairseq.cli import extract as extract_cli
from vesper_fairseq.features import dump as feature_dump
from vesper_fairseq.formats.vesper_folder import save_vesper_folder
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

ARRAYS = ("train_0_1.layer1.npy", "train_0_1.layer3.npy")


def make_encoder(folder, seed):
    torch.manual_seed(seed)
    cfg = tiny_wavlm_config(extractor_mode="default", encoder_layer_norm=False)  # GroupNorm CNN:
    save_vesper_folder(WavLMEncoder(cfg).eval(), folder)  # outputs depend on batch padding
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reruns")
    data = write_audio_manifest(root / "data", {"train": 5}, seconds=(0.3, 1.5), seed=3)
    return {"data": data, "a": make_encoder(root / "a", 0), "b": make_encoder(root / "b", 1)}


def extract(inputs, encoder, out, *extra):
    args = ["--encoder", str(inputs[encoder]), "--out", str(out), "--layers", "1,3"]
    args += ["--manifest", str(inputs["data"] / "train.tsv"), "--batch-size", "3"]
    return extract_cli.main(args + ["--max-chunk", "0.3", "--save-every", "0", *extra])


def test_a_finished_output_refuses_other_settings(inputs, tmp_path):
    extract(inputs, "a", tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in ARRAYS}
    for encoder, extra, differs in [
        ("b", [], "encoder_weights"),
        ("a", ["--granularity", "utterance"], "granularity: 'frame' -> 'utterance'"),
        ("a", ["--dtype", "float32"], "dtype: 'float16' -> 'float32'"),
        ("a", ["--layers", "1,2,3"], r"layers: \[1, 3\] -> \[1, 2, 3\]"),
    ]:
        with pytest.raises(SystemExit, match=f"other settings \\(.*{differs}.*--overwrite"):
            extract(inputs, encoder, tmp_path, *extra)
    assert before == {name: (tmp_path / name).read_bytes() for name in ARRAYS}
    extract(inputs, "b", tmp_path, "--overwrite")
    done = json.loads((tmp_path / "train_0_1.done.json").read_text())
    assert done["encoder"] == str(inputs["b"].resolve())
    assert before != {name: (tmp_path / name).read_bytes() for name in ARRAYS}


def test_a_changed_manifest_is_named_in_words(inputs, tmp_path):
    extract(inputs, "a", tmp_path)
    manifest = tmp_path / "train.tsv"
    lines = (inputs["data"] / "train.tsv").read_text().splitlines()
    manifest.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # one row fewer
    args = ["--encoder", str(inputs["a"]), "--out", str(tmp_path), "--layers", "1,3"]
    with pytest.raises(SystemExit, match=r"manifest rows \(paths or sample counts\) changed"):
        extract_cli.main(args + ["--manifest", str(manifest), "--max-chunk", "0.3"])


def test_overwrite_keeps_the_finished_shard_until_the_new_one_is_complete(inputs, tmp_path):
    extract(inputs, "a", tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("train_0_1.*")}
    killed_run(inputs, tmp_path, 2, "b", "--overwrite")
    assert before == {p.name: p.read_bytes() for p in tmp_path.glob("train_0_1.*") if p.is_file()}
    extract(inputs, "b", tmp_path, "--overwrite", "--layers", "3")
    done = json.loads((tmp_path / "train_0_1.done.json").read_text())
    assert done["layers"] == [3] and done["encoder"] == str(inputs["b"].resolve())
    assert not (tmp_path / ARRAYS[0]).exists()  # layer 1 is no longer part of the shard
    assert (tmp_path / ARRAYS[1]).read_bytes() != before[ARRAYS[1]]
    assert not (tmp_path / "train_0_1.partial").exists()


def killed_run(inputs, out, after_files: int, encoder="a", *extra):
    real_load, calls = feature_dump.load_wave, []

    def dying_load(path, expected):
        calls.append(path)
        if len(calls) > after_files:
            raise KeyboardInterrupt
        return real_load(path, expected)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(feature_dump, "load_wave", dying_load)
        with pytest.raises(KeyboardInterrupt):
            extract(inputs, encoder, out, *extra)


def test_resumed_extraction_is_byte_identical(inputs, tmp_path):
    extract(inputs, "a", tmp_path / "fresh")
    out = tmp_path / "killed"
    killed_run(inputs, out, 2)  # killed reading the 3rd file, chunks of row 1 queued
    extract(inputs, "a", out)
    for name in ARRAYS:
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_a_resume_with_another_encoder_file_is_refused(inputs, tmp_path):
    killed_run(inputs, tmp_path, 4)
    replaced = tmp_path / "enc"
    make_encoder(replaced, 1)  # the file at the same path now holds other weights
    inputs = dict(inputs, a=replaced)
    with pytest.raises(SystemExit, match="partial extraction with other settings.*encoder_weights"):
        extract(inputs, "a", tmp_path)


def test_a_second_writer_stops_naming_the_holder(inputs, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = tmp_path / "train_0_1.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        with pytest.raises(SystemExit, match=f"being written by process {holder.pid}"):
            extract(inputs, "a", tmp_path)
        assert not (tmp_path / "train_0_1.partial").exists()
    finally:
        holder.kill()
        holder.wait()
