"""Corpus files as users have them: linked folders, tab-separated tables whose text starts with a
quote, EmoBox records saved with a byte-order mark, labels that differ only in case."""

import os

from corpora_fixtures import read_skipped, read_tsv, write_audio
from test_corpora_emobox import make_ravdess

from vesper_fairseq.corpora import audio_folder, emobox
from vesper_fairseq.corpora.user_labelled import LabelledConfig, build


def test_linked_folders_are_followed_once(tmp_path):
    for name in ("e0", "e1"):
        for i in range(3):
            write_audio(tmp_path / "elsewhere" / name / f"{i}.wav", 8000 + 100 * i)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_audio(corpus / "own.wav", 9000)
    os.symlink(tmp_path / "elsewhere" / "e0", corpus / "e0")
    os.symlink(tmp_path / "elsewhere" / "e1", corpus / "e1")
    os.symlink(corpus, corpus / "e0_loop")  # a link back up the tree
    audio_folder.build(corpus, tmp_path / "out")
    rows = [
        rel
        for split in ("train", "valid")
        for rel, _ in read_tsv(tmp_path / "out" / f"{split}.tsv")[1]
    ]
    assert sorted(rows) == sorted(["own.wav", *(f"e{k}/{i}.wav" for k in (0, 1) for i in range(3))])


def labelled_clips(root, labels):
    rows = []
    for s in range(4):
        for c, label in enumerate(labels):
            rel = f"clips/spk{s}/{c}.wav"
            write_audio(root / rel, 6000 + 200 * c)
            rows.append((rel, label, f"spk{s}"))
    return rows


def test_a_tab_separated_text_column_may_begin_with_a_quote(tmp_path):
    corpus = tmp_path / "corpus"
    rows = labelled_clips(corpus, ["ang", "hap", "sad"])
    lines = ["path\tlabel\tspeaker\ttext"]
    lines += [f'{rel}\t{label}\t{spk}\t"Hi" she said, "well' for rel, label, spk in rows]
    (corpus / "labels.tsv").write_text("\n".join(lines) + "\n")
    build(corpus / "labels.tsv", tmp_path / "out", LabelledConfig(speaker_column="speaker"))
    kept = sum(len(read_tsv(tmp_path / "out" / f"{s}.tsv")[1]) for s in ("train", "valid", "test"))
    assert kept == len(rows)


def test_class_notes_name_untrainable_and_case_twin_labels(tmp_path):
    corpus = tmp_path / "corpus"
    rows = labelled_clips(corpus, ["ang", "Ang", "hap"])
    split = {"spk0": "train", "spk1": "train", "spk2": "valid", "spk3": "test"}
    lines = ["path,label,speaker,split"]
    lines += [
        f"{rel},{label},{spk},{split[spk]}"
        for rel, label, spk in rows
        if not (label == "hap" and split[spk] == "train")
    ]
    (corpus / "labels.csv").write_text("\n".join(lines) + "\n")
    cfg = LabelledConfig(speaker_column="speaker", split_column="split")
    summary = build(corpus / "labels.csv", tmp_path / "out", cfg)
    assert "note: no train row for class hap: it cannot be learned" in summary
    assert "note: labels 'Ang', 'ang' differ only in case or spacing" in summary
    assert "1 speakers" not in summary and "| 1 speaker" in summary


def test_emobox_records_with_a_byte_order_mark_keep_their_first_line(tmp_path):
    data, root = tmp_path / "data", tmp_path / "downloads"
    make_ravdess(data, root)
    fold = data / "ravdess" / "fold_1" / "ravdess_train_fold_1.jsonl"
    fold.write_bytes(b"\xef\xbb\xbf" + fold.read_bytes().replace(b"\n", b"\r\n"))
    emobox.build(data, "ravdess", root, tmp_path / "out")
    skipped = read_skipped(tmp_path / "out" / "skipped.tsv")
    assert not [reason for reason in skipped.values() if "BOM" in reason or "bad-row" in reason]
    train = len(read_tsv(tmp_path / "out" / "fold1" / "train.tsv")[1])
    valid = len(read_tsv(tmp_path / "out" / "fold1" / "valid.tsv")[1])
    assert train + valid == 24  # 3 actors x 4 emotions x 2 clips


def test_a_second_run_on_the_same_dest_stops_naming_the_first(tmp_path, capsys):
    from vesper_fairseq.corpora.cli import audio_folder_main
    from vesper_fairseq.io_utils import exclusive_lock

    for i in range(4):
        write_audio(tmp_path / "corpus" / f"{i}.wav", 8000)
    dest = tmp_path / "out"
    argv = [str(tmp_path / "corpus"), "--dest", str(dest)]
    with exclusive_lock(dest / ".manifests.lock", "a first run"):
        assert audio_folder_main(argv) == 2
    assert f"the manifests in {dest} is being written by process" in capsys.readouterr().err
    assert not (dest / "train.tsv").exists()
    assert audio_folder_main(argv) == 0 and (dest / "train.tsv").exists()
    assert not (dest / ".manifests.lock").exists()


def test_a_dest_inside_the_corpus_is_refused_before_anything_is_written(tmp_path):
    for i in range(4):
        write_audio(tmp_path / "corpus" / f"{i}.wav", 8000)
    before = sorted(p.name for p in (tmp_path / "corpus").iterdir())
    audio = tmp_path / "corpus"
    try:
        audio_folder.build(audio, audio / "manifests")
    except ValueError as e:
        assert "lies inside the corpus" in str(e)
    else:
        raise AssertionError("a DEST inside the corpus was accepted")
    assert sorted(p.name for p in audio.iterdir()) == before
