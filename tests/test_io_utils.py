"""Files are written atomically with the user's umask; a failed write keeps the old file."""

import errno
import json
import os
import socket
import stat
import subprocess

import numpy as np
import pytest
import torch

from vesper_fairseq import io_utils
from vesper_fairseq.corpora.audio import write_wav_atomic
from vesper_fairseq.evaluation.figures import plot_confusion
from vesper_fairseq.formats.hf_folder import save_hf_folder
from vesper_fairseq.formats.vesper_folder import save_vesper_folder
from vesper_fairseq.io_utils import (
    LockedError,
    WriteError,
    atomic_torch_save,
    atomic_write_text,
    exclusive_lock,
    write_json_atomic,
)
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

WRITERS = {
    "text": lambda p: atomic_write_text(p, "new\n"),
    "json": lambda p: write_json_atomic(p, {"new": 1}),
    "torch": lambda p: atomic_torch_save({"w": torch.zeros(2)}, p),
    "wav": lambda p: write_wav_atomic(p, np.zeros(1600, dtype=np.float32)),
    "png": lambda p: p.parent.mkdir(exist_ok=True) or plot_confusion(np.eye(2), "ab", str(p)),
}


@pytest.fixture
def umask():
    saved = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


@pytest.mark.parametrize(
    "name, mask, mode",
    [(name, 0o022, 0o644) for name in sorted(WRITERS)] + [("text", 0o027, 0o640)],
)
def test_files_follow_the_umask(tmp_path, umask, name, mask, mode):
    umask(mask)
    path = tmp_path / "sub" / f"out.{name}"
    WRITERS[name](path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o777 & ~mask
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_the_umask_is_read_without_changing_it(umask, monkeypatch):
    umask(0o027)

    def changed(mask):
        raise AssertionError("the umask was changed to read it: other threads would see 0o022")

    monkeypatch.setattr(io_utils.os, "umask", changed)
    assert io_utils.current_umask() == 0o027


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _HalfWrite:
    """A file whose write puts some bytes on disk, then fails as a full disk does."""

    def __init__(self, path, mode):
        self.f = open(path, mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[:3])
        self.f.flush()
        _disk_full()


@pytest.mark.parametrize("name", ["text", "json", "torch", "wav"])
def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch, name):
    path = tmp_path / f"out.{name}"
    WRITERS[name](path)
    before = path.read_bytes()
    monkeypatch.setattr(io_utils, "open", _HalfWrite, raising=False)
    monkeypatch.setattr(torch, "save", lambda obj, f: _HalfWrite(f, "wb").write(b"PK\x03\x04"))
    monkeypatch.setattr("soundfile.write", _disk_full)
    with pytest.raises(WriteError, match=f"{path} could not be written: No space left"):
        WRITERS[name](path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = tmp_path / "out.lock"
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with exclusive_lock(lock, "out"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(LockedError, match=f"out is being written by process {os.getpid()}"):
            with exclusive_lock(lock, "out"):
                pass
    assert not lock.exists()


@pytest.mark.parametrize("save", [save_vesper_folder, save_hf_folder])
def test_exported_folders_follow_the_umask(tmp_path, umask, save):
    umask(0o022)
    out = save(WavLMEncoder(tiny_wavlm_config()), tmp_path / "sub" / "export")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [out, *out.iterdir()]}
    assert modes == {"export": 0o755, **{p.name: 0o644 for p in out.iterdir()}}
    assert [p.name for p in out.parent.iterdir()] == ["export"]  # no temporary folder left


def test_a_failed_export_keeps_the_previous_folder(tmp_path, monkeypatch):
    from vesper_fairseq.cli import export

    source = tmp_path / "encoder"
    save_vesper_folder(WavLMEncoder(tiny_wavlm_config()), source)
    out = tmp_path / "out"
    save_vesper_folder(WavLMEncoder(tiny_wavlm_config(encoder_layers=2)), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr("safetensors.torch.save_file", _disk_full)
    message = f"vesper-export: {out / 'model.safetensors'} could not be written: No space left"
    with pytest.raises(SystemExit, match=message):
        export.main([str(source), "--to", "vesper", "--out", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder", "out"]


def test_two_takers_of_one_stale_lock_do_not_both_hold_it(tmp_path, monkeypatch):
    """A reads the dead holder; before A removes the stale lock, B tries to take it too. B must
    not end up holding a lock that A then removes and takes (both would write the output)."""
    import threading

    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = tmp_path / "out.lock"
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    real_holder, outcome, started = io_utils._lock_holder, {}, []

    def taker_b():
        try:
            with exclusive_lock(lock, "out"):
                outcome["b"] = "held"
        except LockedError:
            outcome["b"] = "refused"

    def holder_seen_by_a(path):
        holder = real_holder(path)
        if not started:  # A has just read the dead holder: B starts now
            started.append(threading.Thread(target=taker_b))
            started[0].start()
            started[0].join(timeout=1.0)  # B either finishes or waits for A
        return holder

    monkeypatch.setattr(io_utils, "_lock_holder", holder_seen_by_a)
    with exclusive_lock(lock, "out"):
        started[0].join()
    assert outcome == {"b": "refused"}


@pytest.mark.parametrize("exchange", [True, False])
def test_a_folder_is_replaced_whole(tmp_path, umask, monkeypatch, exchange):
    """atomic_folder: the new set takes the old one's place (by renameat2's exchange where the
    system has it, else renamed aside first), with the umask's mode; an error keeps the old."""
    umask(0o022)
    if not exchange:
        monkeypatch.setattr(io_utils, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old\n")
    with pytest.raises(RuntimeError), io_utils.atomic_folder(out) as tmp:
        (tmp / "new.txt").write_text("new\n")
        raise RuntimeError("failed half way")
    assert os.listdir(out) == ["old.txt"] and os.listdir(tmp_path) == ["out"]
    with io_utils.atomic_folder(out) as tmp:
        (tmp / "new.txt").write_text("new\n")
    assert os.listdir(out) == ["new.txt"] and os.listdir(tmp_path) == ["out"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
