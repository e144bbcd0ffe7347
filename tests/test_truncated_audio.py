"""WAV and AIFF files cut short (an interrupted download or copy) are reported, never read as
shorter audio; every complete file, whatever its layout, is read whole."""

import re
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpora_fixtures import cut_copy, read_skipped, read_tsv, tone
from test_manifests_cli import audio_folder_cli

from vesper_fairseq.corpora import audio as corpora_audio
from vesper_fairseq.corpora.audio import AudioSkip, load_audio, load_segment
from vesper_fairseq.corpora.audio_headers import truncation_problem
from vesper_fairseq.data.audio_dataset import CroppedAudioDataset
from vesper_fairseq.data.manifest_file import ManifestError

SR = 16000
N = 16001  # frames: an odd count, so 8-bit mono audio needs a pad byte
EXT = {"WAV": ".wav", "WAVEX": ".wav", "RF64": ".wav", "AIFF": ".aiff", "FLAC": ".flac"}
# (format, subtype, channels, endian): RIFF, RIFX (big-endian), WAVE_FORMAT_EXTENSIBLE, RF64,
# AIFF and AIFF-C (FLOAT), FLAC
LAYOUTS = [
    ("WAV", "PCM_16", 1, "FILE"),
    ("WAV", "PCM_24", 2, "FILE"),
    ("WAV", "FLOAT", 1, "FILE"),
    ("WAV", "PCM_U8", 1, "FILE"),
    ("WAV", "PCM_16", 2, "BIG"),
    ("WAVEX", "PCM_16", 2, "FILE"),
    ("WAVEX", "FLOAT", 1, "FILE"),
    ("RF64", "PCM_24", 1, "FILE"),
    ("AIFF", "PCM_16", 2, "FILE"),
    ("AIFF", "FLOAT", 1, "FILE"),
    ("FLAC", "PCM_16", 1, "FILE"),
]
LAYOUT_IDS = ["-".join(map(str, layout)) for layout in LAYOUTS]


def write(path: Path, layout, n: int = N, title: str | None = None) -> Path:
    fmt, subtype, channels, endian = layout
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", SR, channels, subtype, endian, fmt) as f:
        if title:  # a LIST (WAV) or NAME (AIFF) chunk
            f.title = title
        f.write(tone(n, SR, channels))
    return path


def append_chunk(path: Path, fmt: str, endian: str) -> None:
    """A metadata chunk after the audio, as tagging tools add (the form size left as it was)."""
    order = ">" if fmt == "AIFF" or endian == "BIG" else "<"
    cid = b"ANNO" if fmt == "AIFF" else b"LIST"
    with open(path, "ab") as f:
        f.write(cid + struct.pack(order + "I", 5) + b"INFOx\x00")


def audio_span(path: Path) -> tuple[int, int, int]:
    """(offset of the audio chunk, of its first audio byte, bytes of audio) of a file these
    tests wrote."""
    data = path.read_bytes()
    if data[:4] == b"FORM":
        at = data.index(b"SSND")
        return at, at + 16, struct.unpack(">I", data[at + 4 : at + 8])[0] - 8
    at = data.index(b"data")
    size = struct.unpack("<I" if data[:4] != b"RIFX" else ">I", data[at + 4 : at + 8])[0]
    if data[:4] == b"RF64":
        size = struct.unpack("<Q", data[data.index(b"ds64") + 16 :][:8])[0]
    return at, at + 8, size


COMPLETE = [(layout, extra) for layout in LAYOUTS for extra in ("plain", "title")] + [
    (layout, extra)
    for layout in LAYOUTS
    if layout[0] != "FLAC"
    for extra in ("chunk after the audio", "junk after the audio")
]


@pytest.mark.parametrize(
    "layout, extra", COMPLETE, ids=[f"{'-'.join(map(str, la))}-{e}" for la, e in COMPLETE]
)
def test_complete_files_are_read_whole(tmp_path, layout, extra):
    path = write(tmp_path / f"a{EXT[layout[0]]}", layout, title="a title" * (extra == "title"))
    if extra == "chunk after the audio":
        append_chunk(path, layout[0], layout[3])
    elif extra == "junk after the audio":
        with open(path, "ab") as f:
            f.write(b"\x00\x01\x02")
    assert truncation_problem(path) is None
    wav, sr = load_audio(path)
    assert wav.shape == (N, layout[2]) and sr == SR


@pytest.mark.parametrize(
    "riff, data",
    [(0xFFFFFFFF, 0xFFFFFFFF), (0x7FFFFFFF + 36, 0x7FFFFFFF), (0, 32000), (32036, 0xFFFFFFFF)],
    ids=["ffmpeg-pipe", "arecord-pipe", "riff-0", "data-unknown"],
)
def test_placeholder_sizes_of_streaming_writers_are_not_a_truncation(tmp_path, riff, data):
    path = write(tmp_path / "stream.wav", LAYOUTS[0], n=16000)
    raw = bytearray(path.read_bytes())
    raw[4:8], raw[40:44] = struct.pack("<I", riff), struct.pack("<I", data)
    path.write_bytes(bytes(raw))
    assert truncation_problem(path) is None
    assert load_audio(path)[0].shape == (16000, 1)


def test_a_miscounted_data_size_in_a_file_as_long_as_its_riff_size_is_accepted(tmp_path):
    path = write(tmp_path / "a.wav", LAYOUTS[0], n=16000)
    raw = bytearray(path.read_bytes())
    raw[40:44] = struct.pack("<I", 32000 + 640)  # the RIFF size still matches the file
    path.write_bytes(bytes(raw))
    assert truncation_problem(path) is None


def test_the_reviewers_file_a_2_s_wav_cut_to_3000_bytes(tmp_path):
    full = write(tmp_path / "full.wav", LAYOUTS[0], n=2 * SR)
    cut = cut_copy(full, 3000, tmp_path / "cut.wav")
    assert sf.info(str(cut)).frames == 1478  # libsndfile alone reads it as 0.092 s
    expected = "truncated: the header declares 64000 bytes of audio, the file holds 2956"
    with pytest.raises(AudioSkip, match=f"^{expected}$"):
        load_audio(cut)
    with pytest.raises(AudioSkip, match=f"^{expected}$"):  # EmoBox segments seek instead
        load_segment(cut, 0.0, 0.05)


def expected_reasons(full: Path) -> dict[str, str]:
    """Cut points -> the reason: inside the form header, inside the chunk in front of the audio,
    inside the audio chunk's header, right after it, mid-audio, a whole frame short."""
    chunk, start, size = audio_span(full)
    of = f" of the {full.stat().st_size} it declares"
    header = "truncated: the file ends inside its header, after {} bytes"
    audio = "truncated: the header declares {} bytes of audio, the file holds {}"
    short = max(size // N, 2)  # a frame, and never less than 2 bytes (a pad byte is tolerated)
    return {
        6: header.format(6),
        20: header.format(20) + ("" if full.read_bytes()[:4] == b"RF64" else of),  # ds64 unread
        chunk + 4: header.format(chunk + 4) + of,
        start: audio.format(size, 0),
        start + size // 3: audio.format(size, size // 3),
        start + size - short: audio.format(size, size - short),
    }


@pytest.mark.parametrize("layout", [la for la in LAYOUTS if la[0] != "FLAC"], ids=LAYOUT_IDS[:-1])
def test_cuts_anywhere_before_the_end_of_the_audio_are_reported(tmp_path, layout):
    full = write(tmp_path / f"full{EXT[layout[0]]}", layout)
    for at, reason in expected_reasons(full).items():
        cut = cut_copy(full, at, tmp_path / f"cut{at}{EXT[layout[0]]}")
        assert truncation_problem(cut) == reason, at
        with pytest.raises(AudioSkip, match=f"^{re.escape(reason)}$"):
            load_audio(cut)


def test_cuts_in_files_with_chunks_before_and_after_the_audio(tmp_path):
    full = write(tmp_path / "full.wav", LAYOUTS[0], title="a title")
    append_chunk(full, "WAV", "FILE")
    _, start, size = audio_span(full)
    assert start > 44  # the LIST chunk lies in front of the audio
    cut = cut_copy(full, start - 8 + 3, tmp_path / "in-data-header.wav")
    assert truncation_problem(cut).startswith("truncated: the file ends inside its header")
    cut = cut_copy(full, start + 1000, tmp_path / "mid.wav")
    expected = f"truncated: the header declares {size} bytes of audio, the file holds 1000"
    assert truncation_problem(cut) == expected
    cut = cut_copy(full, start + size + 5, tmp_path / "in-trailing-chunk.wav")
    assert truncation_problem(cut) is None  # the audio is whole
    assert load_audio(cut)[0].shape == (N, 1)


def test_less_than_a_frame_short_is_not_a_truncation(tmp_path):
    full = write(tmp_path / "full.wav", LAYOUTS[4])  # 4-byte frames
    cut = cut_copy(full, full.stat().st_size - 3, tmp_path / "cut.wav")
    assert truncation_problem(cut) is None
    assert load_audio(cut)[0].shape == (N - 1, 2)


def test_other_files_get_no_verdict(tmp_path):
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    (tmp_path / "avi.wav").write_bytes(b"RIFF\x04\x00\x00\x00AVI " + b"\x00" * 100)
    (tmp_path / "short.wav").write_bytes(b"RIF")
    flac = write(tmp_path / "a.flac", LAYOUTS[-1])
    cut = cut_copy(flac, flac.stat().st_size // 2, tmp_path / "cut.flac")
    for name in ("garbage.wav", "avi.wav", "short.wav", "a.flac", "cut.flac", "absent.wav"):
        assert truncation_problem(tmp_path / name) is None, name
    with pytest.raises(AudioSkip, match="^unreadable: .*lost sync"):  # libsndfile tells
        load_audio(cut)


def test_manifest_scripts_list_truncated_files_and_carry_on(tmp_path):
    root = tmp_path / "in"
    full = write(root / "whole.wav", LAYOUTS[0], n=2 * SR)
    write(root / "whole.flac", LAYOUTS[-1])
    aiff = write(tmp_path / "full.aiff", LAYOUTS[8])
    for at in (6, 40, 44, 3000):
        cut_copy(full, at, root / f"cut{at}.wav")
    cut_copy(aiff, 5000, root / "cut.aiff")
    dest = tmp_path / "out"
    argv = [str(root), "--dest", str(dest), "--valid-percent", "0", "--ext", "wav,flac,aiff"]
    assert audio_folder_cli.main(argv) == 0
    assert sorted(rel for rel, _ in read_tsv(dest / "train.tsv")[1]) == ["whole.flac", "whole.wav"]
    audio = "truncated: the header declares {} bytes of audio, the file holds {}"
    assert read_skipped(dest / "skipped.tsv") == {
        "cut6.wav": "truncated: the file ends inside its header, after 6 bytes",
        "cut40.wav": "truncated: the file ends inside its header, after 40 bytes of the 64044 "
        "it declares",
        "cut44.wav": audio.format(64000, 0),
        "cut3000.wav": audio.format(64000, 2956),
        "cut.aiff": audio.format(4 * N, 5000 - 54),
    }


def test_a_conversion_cached_before_the_check_is_not_reused(tmp_path, monkeypatch):
    root = tmp_path / "in"
    write(root / "whole.wav", LAYOUTS[0])
    full = write(tmp_path / "full.wav", LAYOUTS[1])  # stereo: converted into the cache
    cut_copy(full, 20000, root / "cut.wav")
    argv = [str(root), "--dest", str(tmp_path / "out"), "--valid-percent", "0"]
    with monkeypatch.context() as m:  # an earlier version, which did not check
        m.setattr(corpora_audio, "truncation_problem", lambda path: None)
        assert audio_folder_cli.main(argv) == 0
    assert "cut.wav" in dict(read_tsv(tmp_path / "out" / "train.tsv")[1])
    assert audio_folder_cli.main(argv) == 0
    assert "cut.wav" not in dict(read_tsv(tmp_path / "out" / "train.tsv")[1])
    skipped = read_skipped(tmp_path / "out" / "skipped.tsv")
    assert skipped["cut.wav"].startswith("truncated: the header declares")


def test_training_datasets_name_a_file_cut_after_its_manifest_was_written(tmp_path):
    full = write(tmp_path / "a.wav", LAYOUTS[0])
    write(tmp_path / "b.wav", LAYOUTS[0])
    tsv = tmp_path / "train.tsv"
    tsv.write_text(f"{tmp_path}\nb.wav\t{N}\na.wav\t{N}\n")
    ds = CroppedAudioDataset(str(tsv), sample_rate=SR)
    assert len(ds[1]["source"]) == N
    cut_copy(full, 10044, full)
    where = re.escape(f"{full} (line 3 of {tsv}): truncated: the header declares 32002 bytes")
    with pytest.raises(ManifestError, match=where):
        ds[1]
    assert np.isfinite(ds[0]["source"].numpy()).all()
