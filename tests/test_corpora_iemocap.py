from collections import Counter
from pathlib import Path

import pytest
from corpora_fixtures import (
    IEMOCAP_LINES,
    iemocap_turn,
    make_iemocap,
    output_bytes,
    read_lines,
    read_skipped,
    read_tsv,
    snapshot,
)

from vesper_fairseq.corpora.iemocap import IemocapConfig, build, parse_evaluation, speaker_of
from vesper_fairseq.corpora.manifest import CorpusLayoutError

FOUR = {"ang": "ang", "neu": "neu", "hap": "hap", "exc": "hap", "sad": "sad"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("IEMOCAP_full_release")
    broken = make_iemocap(root)
    return root, broken


def expected_rows(broken, mapping=FOUR, improvised_only=False):
    """turn -> (session, label) of every utterance that must be kept."""
    out = {}
    for n in range(1, 6):
        for dialog, suffix, emo in IEMOCAP_LINES:
            turn = iemocap_turn(n, dialog, suffix)
            if emo in mapping and turn not in broken.values():
                if not improvised_only or dialog == "impro01":
                    out[turn] = (n, mapping[emo])
    return out


def wav_rel(turn):
    return f"Session{int(turn[3:5])}/sentences/wav/{turn.rsplit('_', 1)[0]}/{turn}.wav"


def load_split(folder: Path, split: str):
    root, rows = read_tsv(folder / f"{split}.tsv")
    emo = read_lines(folder / f"{split}.emo")
    spk = read_lines(folder / f"{split}.spk")
    assert len(emo) == len(rows) == len(spk)
    return root, [(Path(rel).stem, n, e, s) for (rel, n), e, s in zip(rows, emo, spk)]


def test_parse_evaluation_line_format(tmp_path):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_M001\tfru\t[2.0000, 3.5000, 3.5000]\n"
    )
    assert parse_evaluation(path) == (
        [("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M001", "fru")],
        [],
    )


def test_speaker_is_session_and_gender_of_the_utterance():
    assert speaker_of("Ses01F_impro01_M003") == "Ses01M"
    assert speaker_of("Ses01F_impro01_F000") == "Ses01F"
    assert speaker_of("Ses05M_script01_1_F012") == "Ses05F"


def test_folds_labels_speakers_and_skipped(corpus, tmp_path):
    root, broken = corpus
    before = snapshot(root)
    summary = build(root, tmp_path / "out")
    expected = expected_rows(broken)
    assert len(expected) == 66
    all_kept = set()
    for fold in range(1, 6):
        folder = tmp_path / "out" / f"fold{fold}"
        tsv_root, test = load_split(folder, "test")
        assert tsv_root == str(root.resolve())  # all 16 kHz mono: the corpus is the root
        _, valid = load_split(folder, "valid")
        _, train = load_split(folder, "train")
        assert {t for t, *_ in test} == {t for t, (s, _) in expected.items() if s == fold}
        rest = {t for t, (s, _) in expected.items() if s != fold}
        assert {t for t, *_ in train} | {t for t, *_ in valid} == rest
        assert not {t for t, *_ in train} & {t for t, *_ in valid}
        # valid: round(20%) of every class of the four training sessions
        rest_counts = Counter(expected[t][1] for t in rest)
        valid_counts = Counter(e for _, _, e, _ in valid)
        assert valid_counts == {c: int(n * 0.2 + 0.5) for c, n in rest_counts.items()}
        for turn, n, emo, spk in test + valid + train:
            assert emo == expected[turn][1]
            assert spk == f"Ses{turn[3:5]}{turn.rsplit('_', 1)[1][0]}"
            assert n > 400
        train_counts = Counter(e for _, _, e, _ in train)
        assert read_lines(folder / "dict.emo.txt") == [
            f"{c} {train_counts[c]}" for c in ["ang", "hap", "neu", "sad"]
        ]
        all_kept |= {t for t, *_ in test}
    assert all_kept == set(expected)

    skipped = read_skipped(tmp_path / "out" / "skipped.tsv")
    assert skipped[wav_rel(broken["missing"])].startswith("missing:")
    assert skipped[wav_rel(broken["empty"])].startswith("empty:")
    assert skipped[wav_rel(broken["too-short"])].startswith("too-short: 300 samples")
    assert skipped[wav_rel(broken["unreadable"])].startswith("unreadable:")
    for n in range(1, 6):
        assert skipped[wav_rel(iemocap_turn(n, "impro01", "M005"))] == "excluded-label: fru"
        assert skipped[wav_rel(iemocap_turn(n, "impro01", "F006"))] == "excluded-label: xxx"
    assert len(skipped) == 14
    assert "excluded-label=10" in summary and "66 utterances" in summary
    assert snapshot(root) == before
    assert not (tmp_path / "out" / "wav16k").exists()


def test_rerun_gives_identical_output(corpus, tmp_path):
    root, _ = corpus
    build(root, tmp_path / "out")
    first = output_bytes(tmp_path / "out")
    build(root, tmp_path / "out")
    assert output_bytes(tmp_path / "out") == first
    assert len(first) == 5 * 10 + 1  # 5 folds x (3 tsv + 3 emo + 3 spk + dict) + skipped


def test_valid_equals_test_protocol(corpus, tmp_path):
    root, broken = corpus
    summary = build(root, tmp_path / "out", IemocapConfig(valid="test"))
    for fold in range(1, 6):
        folder = tmp_path / "out" / f"fold{fold}"
        assert (folder / "valid.tsv").read_bytes() == (folder / "test.tsv").read_bytes()
        assert (folder / "valid.emo").read_bytes() == (folder / "test.emo").read_bytes()
        _, train = load_split(folder, "train")
        assert {t for t, *_ in train} == {
            t for t, (s, _) in expected_rows(broken).items() if s != fold
        }
    assert "valid = test" in summary


def test_five_class_and_improvised_only(corpus, tmp_path):
    root, broken = corpus
    five = {k: k for k in ["ang", "neu", "hap", "exc", "sad"]}
    build(root, tmp_path / "out", IemocapConfig(five_class=True, improvised_only=True))
    expected = expected_rows(broken, five, improvised_only=True)
    got = {}
    for fold in range(1, 6):
        _, test = load_split(tmp_path / "out" / f"fold{fold}", "test")
        got.update({t: e for t, _, e, _ in test})
    assert got == {t: e for t, (_, e) in expected.items()}
    assert "exc" in got.values()
    dict_classes = [line.split()[0] for line in read_lines(tmp_path / "out/fold1/dict.emo.txt")]
    assert dict_classes == ["ang", "exc", "hap", "neu", "sad"]
    skipped = read_skipped(tmp_path / "out" / "skipped.tsv")
    assert skipped[wav_rel(iemocap_turn(1, "script01_1", "F000"))].startswith("excluded-scripted")


def test_not_iemocap_root_is_one_clear_error(tmp_path):
    (tmp_path / "IEMOCAP_full_release" / "Session1").mkdir(parents=True)
    with pytest.raises(CorpusLayoutError, match="Session1..Session5.*IEMOCAP_full_release"):
        build(tmp_path, tmp_path / "out")
    with pytest.raises(CorpusLayoutError, match="not a folder"):
        build(tmp_path / "nope", tmp_path / "out")
