"""Tiny stand-ins for the external inputs README commands name (a corpus under /data,
WavLM-Large.pt, $MASTER, ...): PLACEHOLDERS maps each as written to a function that writes its
stand-in under a folder and returns the path."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import corpora_fixtures as fx
import numpy as np
import soundfile as sf
from fairseq_runs import REPO, make_tiny_teacher, write_audio_manifest


def _lssed(root: Path) -> Path:
    audio = write_audio_manifest(root / "tmp", {"all": 10}, seconds=(1.0, 3.0)) / "audio"
    rows = ["file,speaker"] + [
        f"{p.name},spk{i % 3}" for i, p in enumerate(sorted(audio.iterdir()))
    ]
    (root / "LSSED").mkdir(parents=True, exist_ok=True)
    audio.rename(root / "LSSED" / "audio")
    (root / "LSSED" / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root / "LSSED"


def _any_speech(root: Path) -> Path:
    folder = root / "any_speech"
    for i in range(6):  # 44.1 kHz stereo and 8 kHz mono: the scripts convert
        fx.write_audio(folder / f"a{i}.flac", 44100 + 4410 * i, sr=44100, channels=2)
        fx.write_audio(folder / f"b{i}.wav", 12000 + 800 * i, sr=8000)
    return folder


def _labelled_table(root: Path) -> Path:
    folder, rows = root / "my_corpus", ["path,label,speaker"]
    for s in range(6):
        for c, label in enumerate(("angry", "happy", "sad")):
            for i in range(2):
                rel = f"clips/spk{s}/{label}_{i}.wav"
                fx.write_audio(folder / rel, 6000 + 200 * c + 50 * i)
                rows.append(f"{rel},{label},spk{s}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def _class_folders(root: Path) -> Path:
    for c, label in enumerate(("angry", "happy", "sad")):
        for i in range(10):
            fx.write_audio(root / "my_classes" / label / f"take{i}.flac", 13230 + 441 * c, sr=44100)
    return root / "my_classes"


def _emobox(root: Path) -> Path:
    """EmoBox's folds of IEMOCAP, and its track-2 IEMOCAP set naming the files of the
    /data/IEMOCAP_full_release stand-in."""
    from test_corpora_emobox import make_iemocap
    from test_corpora_emobox_track2 import make_iemocap_set

    make_iemocap(root / "EmoBox" / "data", root / "EmoBox")
    make_iemocap_set(root / "EmoBox" / "data")
    return root / "EmoBox"


def _recordings(root: Path) -> Path:
    for i, (sr, channels, seconds) in enumerate(((16000, 1, 1.5), (44100, 2, 9.0), (8000, 1, 3))):
        fx.write_audio(
            root / "recordings" / f"r{i}.wav", int(sr * seconds), sr=sr, channels=channels
        )
    return root / "recordings"


def _site_packages(root: Path) -> Path:
    """A folder holding unpatched fairseq 0.12.2 as pip installs it (fairseq/ and fairseq_cli/),
    from the sdist that `make install` keeps."""
    sdist = REPO / "build" / "sdist" / "fairseq-0.12.2.tar.gz"
    assert sdist.exists(), f"{sdist} is missing: run `make install` first"
    prefix = "fairseq-0.12.2/"
    with tarfile.open(sdist) as tar:
        packages = (prefix + "fairseq/", prefix + "fairseq_cli/")
        members = [m for m in tar.getmembers() if m.name.startswith(packages)]
        for member in members:
            member.name = member.name.removeprefix(prefix)
        tar.extractall(root / "site-packages", members=members, filter="data")
    return root / "site-packages"


def _folder(name: str):
    def make(root: Path) -> Path:
        (root / name).mkdir(parents=True, exist_ok=True)
        return root / name

    return make


def _corpus(maker, name):
    def make(root: Path) -> Path:
        maker(root / name)
        return root / name

    return make


def _clip(name: str, sr: int, channels: int):
    def make(root: Path) -> Path:
        path = root / "clips" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(1.5 * sr)) / sr
        wav = 0.3 * np.sin(2 * np.pi * 180 * t)[:, None].repeat(channels, 1)
        sf.write(path, wav.astype(np.float32), sr)
        return path

    return make


# placeholder as written in the README -> function(stand-in folder) that writes a tiny stand-in
# and returns its path. Add a line here when a README command reads a new external input.
PLACEHOLDERS = {
    "/data/LSSED": _lssed,
    "/data/any_speech": _any_speech,
    "/data/IEMOCAP_full_release": _corpus(fx.make_iemocap, "IEMOCAP_full_release"),
    "/data/MELD.Raw": _corpus(fx.make_meld, "MELD.Raw"),
    "/data/CREMA-D": _corpus(fx.make_cremad, "CREMA-D"),
    "/data/EmoBox": _emobox,
    "/data/my_corpus": _labelled_table,
    "/data/my_classes": _class_folders,
    "recordings/": lambda root: f"{_recordings(root)}/",
    "/models/WavLM-Large.pt": lambda root: make_tiny_teacher(root / "WavLM-Large.pt"),
    "a.wav": _clip("a.wav", 16000, 1),
    "b.wav": _clip("b.wav", 44100, 2),
    "b.flac": _clip("b.flac", 44100, 2),
    "interview.mp3": _clip("interview.mp3", 44100, 2),
    "/path/to/python3.11": lambda root: sys.executable,
    "/path/to/env": _folder("env"),
    "/path/to/site-packages": _site_packages,
    "$NODE_RANK": lambda root: "0",
    "$MASTER": lambda root: "localhost",
    "$PWD": lambda root: str(Path.cwd()),
}
