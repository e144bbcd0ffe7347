"""Miniature copies of the real corpus layouts (tree, label files, names), with broken files."""

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def tone(n: int, sr: int = SR, channels: int = 1, freq: float = 220.0, amp: float = 0.3):
    t = np.arange(n) / sr
    x = amp * np.sin(2 * np.pi * freq * t) * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))
    return np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)


def write_audio(path: Path, n: int, sr: int = SR, channels: int = 1, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(n, sr, channels), sr, **kw)
    return path


def cut_copy(src: Path, size: int, dest: Path) -> Path:
    """``dest``: the first ``size`` bytes of ``src``, what an interrupted download or copy
    leaves."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src.read_bytes()[:size])
    return dest


def write_mp4(path: Path, n: int | None, sr: int = 48000, silent: bool = False) -> Path:
    """A MELD-like clip: a tiny video stream plus stereo AAC (``n`` samples, or no audio)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
        if n is not None:
            a = c.add_stream("aac", rate=sr)
            a.layout = "stereo"
            x = np.zeros((n, 2), np.float32) if silent else tone(n, sr, 2)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(x.T), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = sr, 0
            for packet in [*a.encode(frame), *a.encode(None)]:
                c.mux(packet)
        for i in range(2):
            img = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            img.pts = i
            c.mux(v.encode(img))
        c.mux(v.encode(None))
    return path


# --------------------------------------------------------------------------------- IEMOCAP
# (dialog, utterance suffix, emotion) repeated in each session; n = session number.
IEMOCAP_LINES = [
    ("impro01", "F000", "ang"),
    ("impro01", "M001", "neu"),
    ("impro01", "F002", "exc"),
    ("impro01", "M003", "hap"),
    ("impro01", "F004", "sad"),
    ("impro01", "M005", "fru"),
    ("impro01", "F006", "xxx"),
    ("impro01", "M007", "ang"),
    ("script01_1", "F000", "sad"),
    ("script01_1", "M001", "neu"),
    ("script01_1", "F002", "ang"),
    ("script01_1", "M003", "exc"),
    ("script01_1", "F004", "neu"),
    ("script01_1", "M005", "sad"),
    ("script01_1", "F006", "hap"),
    ("script01_1", "M007", "neu"),
]


def iemocap_turn(session: int, dialog: str, suffix: str) -> str:
    return f"Ses{session:02d}{'F' if dialog == 'impro01' else 'M'}_{dialog}_{suffix}"


def make_iemocap(root: Path) -> dict:
    """IEMOCAP_full_release-like tree; returns the broken turns by kind."""
    broken = {
        "missing": iemocap_turn(2, "impro01", "F000"),  # labelled, wav absent
        "empty": iemocap_turn(3, "script01_1", "M001"),  # 0-byte wav
        "too-short": iemocap_turn(4, "impro01", "F004"),  # 300 samples
        "unreadable": iemocap_turn(5, "script01_1", "F002"),  # garbage bytes
    }
    for n in range(1, 6):
        sess = root / f"Session{n}"
        evaluation = sess / "dialog" / "EmoEvaluation"
        (evaluation / "Categorical").mkdir(parents=True)
        by_dialog: dict[str, list[str]] = {}
        t = 1.0
        for i, (dialog, suffix, emo) in enumerate(IEMOCAP_LINES):
            turn = iemocap_turn(n, dialog, suffix)
            name = turn.rsplit("_", 1)[0]
            block = [
                f"[{t:.4f} - {t + 2.5:.4f}]\t{turn}\t{emo}\t[2.5000, 3.0000, 3.5000]",
                "C-E2:\tNeutral;\t()",
                "A-E3:\tval 3; act 2; dom  2;\t()",
                "",
            ]
            by_dialog.setdefault(name, []).extend(block)
            t += 3.0
            wav = sess / "sentences" / "wav" / name / f"{turn}.wav"
            if turn == broken["missing"]:
                continue
            wav.parent.mkdir(parents=True, exist_ok=True)
            if turn == broken["empty"]:
                wav.write_bytes(b"")
            elif turn == broken["too-short"]:
                write_audio(wav, 300)
            elif turn == broken["unreadable"]:
                wav.write_bytes(b"RIFF\x00\x00garbage" * 10)
            else:
                write_audio(wav, 8000 + 160 * i + 16 * n)
        for name, lines in by_dialog.items():
            header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
            (evaluation / f"{name}.txt").write_text(header + "\n".join(lines) + "\n")
            (evaluation / "Categorical" / f"{name}_e2_cat.txt").write_text("ignored\n")
        (evaluation / f"._{name}.txt").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
        # An utterance with audio but no label line (IEMOCAP has many): must be ignored.
        write_audio(sess / "sentences" / "wav" / name / f"{name}_X999.wav", 4000)
    return broken


# ------------------------------------------------------------------------------------ MELD
MELD_COLUMNS = [
    "Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
    "Season", "Episode", "StartTime", "EndTime",
]  # fmt: skip
# split -> [(dialogue, utterance, speaker, emotion, clip kind)]
MELD_ROWS = {
    "train": [
        (0, 0, "Chandler", "neutral", "mp4"),
        (0, 1, "The Interviewer", "surprise", "mp4"),
        (0, 2, "Chandler", "joy", "wav"),  # extracted 16 kHz wav next to no mp4
        (1, 0, "Monica", "anger", "mp4"),
        (1, 1, "Joey", "sadness", "silent"),
        (2, 0, "Ross", "disgust", "mp4"),
        (2, 1, "Rachel", "fear", "empty"),
    ],
    "valid": [
        (0, 0, "Phoebe", "neutral", "mp4"),
        (0, 1, "Phoebe", "joy", "mp4"),
        (1, 2, "Ross", "anger", "absent"),  # like dev dia110_utt7
    ],
    "test": [
        (0, 0, "Joey", "fear", "mp4"),
        (0, 1, "Monica", "sadness", "noaudio"),
        (3, 0, "Rachel", "neutral", "mp4"),
    ],
}
MELD_DIRS = {
    "train": ("train_sent_emo.csv", "train_splits"),
    "valid": ("dev_sent_emo.csv", "dev_splits_complete"),
    "test": ("test_sent_emo.csv", "output_repeated_splits_test"),
}


def make_meld(root: Path) -> None:
    sr_no = 1
    for split, rows in MELD_ROWS.items():
        csv_name, folder = MELD_DIRS[split]
        root.mkdir(parents=True, exist_ok=True)
        with open(root / csv_name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(MELD_COLUMNS)
            for d, u, speaker, emo, kind in rows:
                text = f'Oh, well\u0092 \u2014 "line" {d},{u}'
                sentiment = "neutral" if emo == "neutral" else "negative"
                w.writerow([sr_no, text, speaker, emo, sentiment, d, u, 8, 21,
                            "00:16:16,059", "00:16:21,731"])  # fmt: skip
                sr_no += 1
                clip = root / folder / f"dia{d}_utt{u}.mp4"
                if kind == "mp4":
                    write_mp4(clip, 24000 + 4800 * d + 480 * u)
                elif kind == "wav":
                    write_audio(clip.with_suffix(".wav"), 20000)
                elif kind == "silent":
                    write_mp4(clip, 24000, silent=True)
                elif kind == "empty":
                    clip.parent.mkdir(parents=True, exist_ok=True)
                    clip.write_bytes(b"")
                elif kind == "noaudio":
                    write_mp4(clip, None)
    # Clips no csv row names: ignored.
    write_mp4(root / "output_repeated_splits_test" / "final_videos_testdia0_utt0.mp4", 9600)
    write_mp4(root / "dev_splits_complete" / "dia9_utt9.mp4", 9600)


# --------------------------------------------------------------------------------- CREMA-D
CREMAD_EMOS = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
CREMAD_SENTENCES = ["DFA", "IEO", "IOM", "ITH", "ITS", "IWL", "IWW", "MTI", "TAI", "TIE", "TSI"]


def make_cremad(root: Path, actors: int = 10, per_emo: int = 3) -> dict:
    """AudioWAV/ with ``actors`` x 6 emotions x ``per_emo`` clips, plus broken files."""
    audio = root / "AudioWAV"
    audio.mkdir(parents=True)
    for a in range(actors):
        for e, emo in enumerate(CREMAD_EMOS):
            for k in range(per_emo):
                level = "XX" if k == 0 else ["LO", "MD", "HI"][k % 3]
                name = f"{1001 + a}_{CREMAD_SENTENCES[k]}_{emo}_{level}.wav"
                write_audio(audio / name, 12000 + 100 * e + 10 * k)
    broken = {
        "1076_MTI_SAD_XX.wav": "empty",  # the real release has one broken clip like this
        "1077_DFA_ANG_XX.wav": "unreadable",  # a git-lfs pointer (clone without git lfs)
        "1078_IEO_HAP_LO.wav": "silent",
        "1079_DFA_NEU_XX.wav": "zero-length",  # a valid header, no frames
    }
    (audio / "1076_MTI_SAD_XX.wav").write_bytes(b"")
    (audio / "1077_DFA_ANG_XX.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"
    )
    sf.write(audio / "1078_IEO_HAP_LO.wav", np.zeros(16000, np.float32), SR)
    sf.write(audio / "1079_DFA_NEU_XX.wav", np.zeros(0, np.float32), SR)
    write_audio(audio / "notes.wav", 8000)  # bad name
    return broken


def snapshot(root: Path) -> dict:
    """Path -> (size, mtime_ns) of every file, to prove a tree was not written to."""
    return {
        p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def read_tsv(path: Path) -> tuple[str, list[tuple[str, int]]]:
    lines = path.read_text().splitlines()
    rows = [(rel, int(n)) for rel, n in (line.split("\t") for line in lines[1:])]
    return lines[0], rows


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def read_skipped(path: Path) -> dict[str, str]:
    lines = read_lines(path)
    assert lines[0] == "path\treason"
    return dict(line.split("\t", 1) for line in lines[1:])


def output_bytes(dest: Path) -> dict[str, bytes]:
    """Every manifest/label file under DEST (not the audio cache)."""
    return {
        p.relative_to(dest).as_posix(): p.read_bytes()
        for p in sorted(dest.rglob("*"))
        if p.is_file() and p.suffix in {".tsv", ".emo", ".spk", ".txt"}
    }


def emobox_record(corpus: str, key: str, wav: str, emo: str, n: int, sr: int, channels: int) -> str:
    rec = {
        "key": f"{corpus}-{key}",
        "dataset": corpus,
        "wav": wav,
        "type": "raw",
        "sample_rate": sr,
        "num_frame": float(n),
        "task": "category",
        "length": n / sr,
        "emo": emo,
        "channel": channels,
    }
    return json.dumps(rec)


def write_emobox_fold(data: Path, corpus: str, k: int, splits: dict[str, list[str]]) -> None:
    fold = data / corpus / f"fold_{k}"
    fold.mkdir(parents=True, exist_ok=True)
    for split, lines in splits.items():
        (fold / f"{corpus}_{split}_fold_{k}.jsonl").write_text("\n".join(lines) + "\n")
        (fold / f"{corpus}_{split}_fold_{k}.json").write_text("[]")  # EmoBox ships both
