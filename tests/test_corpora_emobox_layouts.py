"""EmoBox layouts beyond the plain folds: the speaker rules of every corpus's real paths, the
audio root, segment records cut from long recordings, MELD's mp4 clips and EmoBox's own valid
split."""

import json
from pathlib import Path

import pytest
import soundfile as sf
from corpora_fixtures import (
    emobox_record,
    output_bytes,
    read_lines,
    read_tsv,
    write_audio,
    write_emobox_fold,
    write_mp4,
)

from vesper_fairseq.corpora.emobox import EmoboxConfig, build


@pytest.mark.parametrize(
    "corpus, wav, speaker",
    [  # paths as EmoBox's data/<corpus>/*.jsonl write them
        (
            "iemocap",
            "downloads/iemocap/Session1/sentences/wav/Ses01F_impro04/Ses01F_impro04_M003.wav",
            "Ses01M",
        ),
        ("cremad", "downloads/cremad/AudioWAV/1052_WSI_ANG_XX.wav", "1052"),
        (
            "ravdess",
            "downloads/ravdess/audio/Audio_Speech_Actors_01-24/Actor_11/03-01-07-02-02-02-11.wav",
            "11",
        ),
        ("emodb", "downloads/emodb/wav/03a02Wb.wav", "03"),
        ("esd", "downloads/esd/0005/Neutral/0005_000001.wav", "0005"),
        ("savee", "downloads/savee/KL_su02.wav", "KL"),
        ("tess", "downloads/tess/YAF_tire_fear.wav", "YAF"),
        ("casia", "downloads/casia/zhaozuoxiang/neutral/239.wav", "zhaozuoxiang"),
        ("emovo", "downloads/emovo/m3/pau-m3-d2.wav", "m3"),
        ("subesco", "downloads/subesco/F_10_FAHMEE_S_6_FEAR_5.wav", "F_10"),
        ("shemo", "downloads/shemo/female/F02S05.wav", "F02"),
        ("asvpesd", "downloads/asvpesd/Audio/actor_112/03-01-09-01-23-112-02-02-02-02.wav", "112"),
        ("enterface", "downloads/enterface/subject 19/anger/sentence 1/s19_an_1.avi", "19"),
        ("polish", "downloads/polish/m2.n_podaj_2.wav", "m2"),
        ("cafe", "downloads/cafe/CaFE_48k/Peur/Fort/12-P-2-5.wav", "12"),
        (
            "jlcorpus",
            "downloads/jlcorpus/Raw JL corpus (unchecked and unannotated)/"
            "JL(wav+txt)/female1_apologetic_15b_2.wav",
            "female1",
        ),
        ("emovdb", "downloads/emovdb/jenie_Amused/amused_85-94_0089.wav", "jenie"),
        ("meld", "downloads/meld/train/train_splits/dia0_utt0.mp4", None),
    ],
)
def test_speaker_rules_read_real_emobox_paths(corpus, wav, speaker):
    from vesper_fairseq.corpora.emobox_speakers import speaker_of, speaker_rule

    assert speaker_of({}, wav, speaker_rule(corpus)) == speaker
    assert speaker_of({"speaker": "x7"}, wav, speaker_rule(corpus)) == "x7"


def test_audio_root_may_be_the_user_folder_downloads_or_the_corpus(tmp_path):
    from vesper_fairseq.corpora.emobox import resolve_audio

    wav = "downloads/savee/DC_a01.wav"
    target = write_audio(tmp_path / wav, 800)
    for root in (tmp_path, tmp_path / "downloads", tmp_path / "downloads" / "savee"):
        assert resolve_audio(wav, root.resolve(), "savee") == target.resolve()
    assert resolve_audio("../../etc/passwd", (tmp_path / "downloads").resolve(), "savee") is None


def test_segment_records_are_cut_from_the_long_recording(tmp_path):
    """PAVOQUE-style records: one 44.1 kHz flac, each record a start_time..end_time span."""
    import numpy as np
    import soxr

    data, root = tmp_path / "data", tmp_path / "EmoBox"
    long_wav = "downloads/pavoque/pavoque-all.flac"
    write_audio(root / long_wav, 3 * 44100, sr=44100, channels=2)
    lines = []
    for i in range(8):
        rec = json.loads(
            emobox_record("pavoque", f"s{i}", long_wav, ["poker", "angry"][i % 2], 1, 1, 1)
        )
        rec.update(start_time=0.3 * i + 0.05, end_time=0.3 * i + 0.3)
        lines.append(json.dumps(rec))
    bad = json.loads(lines[0])
    bad_end = dict(bad, key="pavoque-late", start_time=2.9, end_time=3.5)
    bad_num = dict(bad, key="pavoque-nan", start_time="soon")
    train = lines[:6] + [json.dumps(bad_end), json.dumps(bad_num)]
    write_emobox_fold(data, "pavoque", 1, {"train": train, "test": lines[6:]})
    (data / "pavoque" / "label_map.json").write_text('{"poker": "Neutral", "angry": "Angry"}')
    build(data, "pavoque", root, tmp_path / "out", EmoboxConfig(valid_percent=0.5))

    fold = tmp_path / "out" / "fold1"
    tsv_root, rows = read_tsv(fold / "test.tsv")
    cut_dir = "downloads/pavoque/pavoque-all"
    assert [rel for rel, _ in rows] == [f"{cut_dir}/1.850-2.100.wav", f"{cut_dir}/2.150-2.400.wav"]
    whole, _ = sf.read(str(root / long_wav), dtype="float32")
    reference = soxr.resample(whole.mean(axis=1), 44100, 16000)  # resample, then cut
    for rel, n in rows:
        cut, sr = sf.read(str(Path(tsv_root) / rel), dtype="float32")
        start = float(Path(rel).stem.split("-")[0])
        assert sr == 16000 and n == len(cut) == round(0.25 * 44100) * 16000 // 44100
        first = round(start * 16000)
        mid = slice(200, n - 200)  # away from the edges the two resamplings agree
        np.testing.assert_allclose(cut[mid], reference[first : first + n][mid], atol=2e-3)
    assert sum(len(read_lines(fold / f"{s}.emo")) for s in ("train", "valid")) == 6
    skipped = read_lines(tmp_path / "out" / "skipped.tsv")[1:]
    assert any("bad-segment: ends at 3.5 s, after the file's 3 s" in line for line in skipped)
    assert any("start_time and end_time must both be numbers" in line for line in skipped)
    cache = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "wav16k").rglob("*.wav")}
    first = output_bytes(tmp_path / "out")
    build(data, "pavoque", root, tmp_path / "out", EmoboxConfig(valid_percent=0.5))
    assert output_bytes(tmp_path / "out") == first  # a rerun reuses the cut segments
    assert {p: p.stat().st_mtime_ns for p in cache} == cache and len(cache) == 8


def test_meld_mp4_clips_and_emobox_own_valid_split(tmp_path):
    """MELD as EmoBox lists it: mp4 clips (48 kHz stereo AAC) decoded into the 16 kHz mono
    cache like manifests/meld.py's, and EmoBox's own valid split kept as it is."""

    data, root = tmp_path / "data", tmp_path / "EmoBox"
    lines: dict[str, list[str]] = {}
    folders = {"train": "train_splits", "valid": "dev_splits_complete", "test": "test_splits"}
    for split, folder in folders.items():
        for d in range(3):
            for u, emo in enumerate(("neutral", "joy", "anger")):
                wav = f"downloads/meld/{folder}/dia{d}_utt{u}.mp4"
                write_mp4(root / wav, 24000 + 4800 * u)
                key = f"{split}_dia{d}_utt{u}"
                lines.setdefault(split, []).append(
                    emobox_record("meld", key, wav, emo, 1, 48000, 2)
                )
    write_emobox_fold(data, "meld", 1, lines)
    build(data, "meld", root, tmp_path / "out")
    fold = tmp_path / "out" / "fold1"
    for split, folder in folders.items():
        tsv_root, rows = read_tsv(fold / f"{split}.tsv")
        assert tsv_root == str((tmp_path / "out" / "wav16k").resolve())
        assert {rel.split("/")[2] for rel, _ in rows} == {folder} and len(rows) == 9
        for rel, n in rows:
            info = sf.info(str(Path(tsv_root) / rel))
            assert (info.samplerate, info.channels) == (16000, 1) and info.frames == n
            assert abs(n - (8000 + 1600 * int(rel[-5]))) <= 400  # AAC frames: 1024 at 48 kHz
    assert (
        "valid = EmoBox's own valid split"
        in json.loads((tmp_path / "out" / "manifests.json").read_text())["protocol"]
    )
