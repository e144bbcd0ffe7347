from collections import Counter
from pathlib import Path

import pytest
from corpora_fixtures import (
    CREMAD_EMOS,
    make_cremad,
    output_bytes,
    read_lines,
    read_skipped,
    read_tsv,
    snapshot,
)

from vesper_fairseq.corpora.cremad import CremadConfig, build
from vesper_fairseq.corpora.manifest import CorpusLayoutError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("CREMA-D")
    return root, make_cremad(root)


def load(dest: Path, split: str):
    root, rows = read_tsv(dest / f"{split}.tsv")
    emo, spk = read_lines(dest / f"{split}.emo"), read_lines(dest / f"{split}.spk")
    assert len(rows) == len(emo) == len(spk)
    for (rel, _), e, s in zip(rows, emo, spk):
        actor, _, code, _ = Path(rel).stem.split("_")
        assert (e, s) == (code, actor)  # labels and speakers aligned with the tsv rows
    return root, [Path(rel).name for rel, _ in rows], emo, spk


def test_random_split_is_stratified_80_20_valid_is_test(corpus, tmp_path):
    root, broken = corpus
    before = snapshot(root)
    summary = build(root, tmp_path)
    tsv_root, train, train_emo, _ = load(tmp_path, "train")
    _, test, test_emo, test_spk = load(tmp_path, "test")
    assert tsv_root == str(root.resolve())
    assert all(r.startswith("AudioWAV/") for r, _ in read_tsv(tmp_path / "train.tsv")[1])
    assert (tmp_path / "valid.tsv").read_bytes() == (tmp_path / "test.tsv").read_bytes()
    assert len(train) + len(test) == 180 and not set(train) & set(test)
    assert Counter(test_emo) == {e: 6 for e in CREMAD_EMOS}  # round(0.2 * 30) per class
    assert Counter(train_emo) == {e: 24 for e in CREMAD_EMOS}
    assert read_lines(tmp_path / "dict.emo.txt") == [f"{e} 24" for e in CREMAD_EMOS]
    assert len(set(test_spk)) > 1  # speakers shared: the authors' protocol
    skipped = read_skipped(tmp_path / "skipped.tsv")
    assert {Path(p).name: r.split(":")[0] for p, r in skipped.items()} == {
        **broken,
        "notes.wav": "bad-name",
    }
    assert "git lfs pull" in skipped["AudioWAV/1077_DFA_ANG_XX.wav"]
    assert "valid = test" in summary and "speakers shared" in summary
    assert snapshot(root) == before


def test_actor_split_is_actor_disjoint(corpus, tmp_path):
    root, _ = corpus
    summary = build(root, tmp_path, CremadConfig(split="actor"))
    spk = {s: set(load(tmp_path, s)[3]) for s in ["train", "valid", "test"]}
    assert [len(spk[s]) for s in ["train", "valid", "test"]] == [8, 1, 1]
    assert not (spk["train"] & spk["valid"] or spk["train"] & spk["test"])
    assert not spk["valid"] & spk["test"]
    assert set().union(*spk.values()) == {str(1001 + a) for a in range(10)}
    for split in ["train", "valid", "test"]:
        assert len(read_lines(tmp_path / f"{split}.emo")) == 18 * len(spk[split])
    assert "actor-disjoint" in summary


def test_rerun_identical_and_seed_matters(corpus, tmp_path):
    root, _ = corpus
    build(root, tmp_path / "a")
    build(root, tmp_path / "a")
    build(root, tmp_path / "b")
    build(root, tmp_path / "c", CremadConfig(seed=1))
    assert output_bytes(tmp_path / "a") == output_bytes(tmp_path / "b")
    assert output_bytes(tmp_path / "a")["test.tsv"] != output_bytes(tmp_path / "c")["test.tsv"]


def test_root_without_clips_is_one_clear_error(tmp_path):
    (tmp_path / "AudioWAV").mkdir()
    with pytest.raises(CorpusLayoutError, match=r"AudioWAV/1001_DFA_ANG_XX\.wav"):
        build(tmp_path, tmp_path / "out")


def test_dest_inside_the_corpus_is_refused(corpus):
    root, _ = corpus
    with pytest.raises(ValueError, match="inside the corpus"):
        build(root, root / "manifests")
    assert not (root / "manifests").exists()
