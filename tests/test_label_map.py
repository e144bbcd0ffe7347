"""Label maps (JSON, a=b file, inline list) and rewriting a split in a model's classes."""

import json

import pytest

from vesper_fairseq.label_map import LabelMapError, parse_label_map, remap_split


def test_three_forms_give_one_map(tmp_path):
    (tmp_path / "map.json").write_text(json.dumps({"ANG": "ang", "EXC": "hap", "DIS": None}))
    (tmp_path / "map.txt").write_text("# CREMA-D -> IEMOCAP\nANG = ang\nEXC=hap  # merged\nDIS=\n")
    maps = [
        parse_label_map(tmp_path / "map.json"),
        parse_label_map(tmp_path / "map.txt"),
        parse_label_map("ANG=ang, EXC=hap,DIS="),
    ]
    for m in maps:
        assert m.mapping == {"ANG": "ang", "EXC": "hap", "DIS": None}
        assert [m.apply(x) for x in ("ANG", "EXC", "DIS", "NEU")] == ["ang", "hap", None, "NEU"]
    assert maps[0].targets() == ["ang", "hap"]
    assert not parse_label_map(None).mapping and parse_label_map(None).apply("x") == "x"


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"a": "b",\n "c": }', r"map.json, line 2: not valid JSON"),
        ('["a", "b"]', "must be a JSON object"),
        ('{"a": 3}', "labels must be strings"),
        ('{"a": "b c"}', "white space"),
    ],
)
def test_bad_json_maps_name_the_file_and_problem(tmp_path, content, match):
    (tmp_path / "map.json").write_text(content)
    with pytest.raises(LabelMapError, match=match):
        parse_label_map(tmp_path / "map.json")


def test_bad_text_maps_name_the_line(tmp_path):
    (tmp_path / "map.txt").write_text("a=b\nc\n")
    with pytest.raises(LabelMapError, match=r"map.txt, line 2: expected source=target"):
        parse_label_map(tmp_path / "map.txt")
    with pytest.raises(LabelMapError, match="'a' is mapped twice"):
        parse_label_map("a=b,a=c")
    with pytest.raises(LabelMapError, match="no such file"):
        parse_label_map(tmp_path / "missing.json")


def test_remap_split_keeps_known_rows_in_order(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = ["a.wav\t100", "b.wav\t200", "c.wav\t300", "d.wav\t400", "e.wav\t500"]
    (data / "test.tsv").write_text("\n".join(["/corpus", *rows]) + "\n")
    (data / "test.emo").write_text("ANG\nDIS\nEXC\nFEA\nNEU\n")
    m = parse_label_map("ANG=ang,EXC=hap,NEU=neu,FEA=")
    out = remap_split(data, "test", ["ang", "hap", "neu", "sad"], m, tmp_path / "out")
    assert (out.kept, dict(out.left_out), dict(out.dropped)) == (3, {"DIS": 1}, {"FEA": 1})
    tsv = (tmp_path / "out" / "test.tsv").read_text().splitlines()
    assert tsv == ["/corpus", "a.wav\t100", "c.wav\t300", "e.wav\t500"]
    assert (tmp_path / "out" / "test.emo").read_text() == "ang\nhap\nneu\n"
    dict_lines = (tmp_path / "out" / "dict.emo.txt").read_text().splitlines()
    assert dict_lines == ["ang 1", "hap 1", "neu 1", "sad 0"]
    with pytest.raises(ValueError, match="no row has a label the model knows"):
        remap_split(data, "test", ["x", "y"], parse_label_map(None), tmp_path / "o2")


def test_cremad_manifests_in_iemocap_classes(tmp_path, capsys):
    """--label-map at manifest time (any labelled corpus script): CREMA-D's matching subset
    in IEMOCAP's names; the classes it drops are listed in skipped.tsv, never relabelled."""
    from corpora_fixtures import make_cremad, read_lines, read_skipped

    from vesper_fairseq.corpora.cli import cremad_main

    make_cremad(tmp_path / "CREMA-D", actors=3, per_emo=2)
    dest = tmp_path / "out"
    argv = [str(tmp_path / "CREMA-D"), "--dest", str(dest)]
    mapping = "ANG=ang,HAP=hap,NEU=neu,SAD=sad,DIS=,FEA="
    assert cremad_main(argv + ["--label-map", mapping]) == 0
    assert [line.split()[0] for line in read_lines(dest / "dict.emo.txt")] == [
        "ang", "hap", "neu", "sad"
    ]  # fmt: skip
    labels = {split: read_lines(dest / f"{split}.emo") for split in ("train", "test")}
    assert set(labels["train"] + labels["test"]) == {"ang", "hap", "neu", "sad"}
    assert len(labels["train"]) + len(labels["test"]) == 3 * 4 * 2
    dropped = [r for r in read_skipped(dest / "skipped.tsv").values() if "label map" in r]
    assert (
        sorted(dropped)
        == ["excluded-label: DIS dropped by the label map"] * 6
        + ["excluded-label: FEA dropped by the label map"] * 6
    )
    assert cremad_main(argv + ["--label-map", "ang=x"]) == 2  # a typo is named, not ignored
    assert "names ang, not among its classes" in capsys.readouterr().err
