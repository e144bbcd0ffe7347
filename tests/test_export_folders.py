"""A folder export (vesper, hf) leaves OUT holding exactly that format's files, and replaces an
earlier OUT whole: never a mix of old and new files."""

import os
import re

import pytest
from classifier_fixtures import make_tiny_classifier

from vesper_fairseq.cli import export as export_cli
from vesper_fairseq.formats import load_encoder

VESPER = ["config.json", "model.safetensors"]
HF_CLASSIFIER = ["README.md", "config.json", "model.safetensors", "preprocessor_config.json"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("export_folders") / "clf.pt")


def export(checkpoint, to, out, *extra):
    export_cli.main([str(checkpoint), "--to", to, "--out", str(out), *extra])


def contents(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_folder_of_another_export_is_refused_naming_its_files(checkpoint, tmp_path):
    out = tmp_path / "out"
    export(checkpoint, "hf", out)
    before = contents(out)
    message = (
        f"vesper-export: {out} holds files that are not part of the vesper export: "
        "['README.md', 'preprocessor_config.json']; write to another --out, or add --overwrite"
    )
    with pytest.raises(SystemExit, match=re.escape(message)):
        export(checkpoint, "vesper", out)
    assert contents(out) == before  # nothing written

    export(checkpoint, "vesper", out, "--overwrite")
    assert sorted(contents(out)) == VESPER
    assert load_encoder(out).num_layers == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left

    export(checkpoint, "vesper", out)  # the same format again: its own files are replaced
    export(checkpoint, "hf", out, "--encoder-only")  # vesper's file names are all hf's too
    assert sorted(contents(out)) == ["config.json", "model.safetensors", "preprocessor_config.json"]


def test_a_folder_inside_out_is_never_removed(checkpoint, tmp_path):
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "keep.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        with pytest.raises(SystemExit, match=r"holds folders .* \['notes'\]; write to another"):
            export(checkpoint, "hf", out, *extra)
    assert (out / "notes" / "keep.txt").read_text() == "mine"


def test_an_interrupted_export_leaves_the_old_folder_or_the_new_one(checkpoint, tmp_path):
    """Interrupted at each move into OUT in turn: OUT is wholly the old export or the new."""
    out, new = tmp_path / "out", tmp_path / "new"
    export(checkpoint, "hf", out, "--encoder-only")
    export(checkpoint, "hf", new)
    old, fresh = contents(out), contents(new)
    moves = {"n": 0}
    real = {"rename": os.rename, "replace": os.replace}

    def interrupted_at(k):
        def move(name):
            def call(src, dst, **kw):
                moves["n"] += 1
                if moves["n"] == k:
                    raise KeyboardInterrupt
                return real[name](src, dst, **kw)

            return call

        return move

    for k in (1, 2, 3):
        moves["n"] = 0
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "rename", interrupted_at(k)("rename"))
            mp.setattr(os, "replace", interrupted_at(k)("replace"))
            try:
                export(checkpoint, "hf", out)
            except KeyboardInterrupt:
                pass
        assert contents(out) in (old, fresh), f"a mix after {k - 1} moves"
    export(checkpoint, "hf", out)
    assert contents(out) == fresh
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]
