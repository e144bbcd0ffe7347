"""The command lines behind ``manifests/*.py`` (also usable as console-script entry points)."""

import argparse
import logging
import sys
from collections.abc import Callable

from vesper_fairseq.corpora import (
    audio_folder,
    cremad,
    emobox,
    iemocap,
    lssed,
    meld,
    synthetic,
    user_labelled,
)
from vesper_fairseq.corpora.audio import MIN_SAMPLES
from vesper_fairseq.corpora.manifest import CorpusLayoutError
from vesper_fairseq.corpora.splits import check_fraction


def _checked(check: Callable, convert: Callable = str) -> Callable:
    """An argparse ``type`` that converts, then range-checks (a bad value: one usage error)."""

    def parse(text: str):
        try:
            return check(convert(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


FRACTION = _checked(lambda x: check_fraction(x, "the share"), float)
EXTENSIONS = _checked(audio_folder.parse_exts)
MIN_SAMPLES_ARG = _checked(audio_folder.check_min_samples, int)

MIN_SAMPLES_HELP = "skip clips shorter than this at 16 kHz (the model's receptive field)"


def parser(description: str, root_help: str = "the corpus folder as its publisher ships it"):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("root", metavar="ROOT", help=root_help)
    p.add_argument("--dest", required=True, help="output folder (manifests, labels, cache)")
    p.add_argument(
        "--min-samples",
        type=MIN_SAMPLES_ARG,
        default=MIN_SAMPLES,
        help=MIN_SAMPLES_HELP,
    )
    return p


def add_label_map(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--label-map",
        help="rename / merge / drop classes: map.json, a file of a=b lines, or ANG=ang,DIS= "
        "(an empty target drops the class)",
    )


def run(build: Callable[[], str]) -> int:
    """Runs a builder, prints its summary; a bad ROOT or option gives one error line, exit 2."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        summary = build()
    except (CorpusLayoutError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def audio_folder_main(argv=None) -> int:
    p = parser("Any folder of audio -> DEST/{train,valid}.tsv for pretraining (no labels).")
    p.add_argument(
        "--ext", type=EXTENSIONS, default=("wav", "flac"), help="comma-separated extensions"
    )
    p.add_argument("--valid-percent", type=FRACTION, default=0.01, help="share in [0, 1)")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    cfg = audio_folder.AudioFolderConfig(a.ext, a.valid_percent, a.seed, a.min_samples)
    return run(lambda: audio_folder.build(a.root, a.dest, cfg))


def iemocap_main(argv=None) -> int:
    p = parser(
        "IEMOCAP -> DEST/fold{1..5}/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt, "
        "leave-one-session-out (test = Session f).",
        "IEMOCAP_full_release (holding Session1..Session5)",
    )
    p.add_argument(
        "--valid",
        choices=["split", "test"],
        default="split",
        help="split: stratified share of the 4 training sessions; test: valid = test (authors)",
    )
    p.add_argument("--valid-percent", type=FRACTION, default=0.2, help="share in [0, 1)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--five-class", action="store_true", help="keep exc apart from hap")
    p.add_argument("--improvised-only", action="store_true", help="improvised dialogues only")
    add_label_map(p)
    a = p.parse_args(argv)
    cfg = iemocap.IemocapConfig(
        five_class=a.five_class,
        improvised_only=a.improvised_only,
        valid=a.valid,
        valid_percent=a.valid_percent,
        seed=a.seed,
        min_samples=a.min_samples,
        label_map=a.label_map,
    )
    return run(lambda: iemocap.build(a.root, a.dest, cfg))


def meld_main(argv=None) -> int:
    p = parser(
        "MELD -> DEST/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt; mp4 clips are decoded "
        "to 16 kHz mono wav in DEST/wav16k.",
        "MELD.Raw (the three *_sent_emo.csv and the extracted clip folders)",
    )
    add_label_map(p)
    a = p.parse_args(argv)
    cfg = meld.MeldConfig(min_samples=a.min_samples, label_map=a.label_map)
    return run(lambda: meld.build(a.root, a.dest, cfg))


def cremad_main(argv=None) -> int:
    p = parser(
        "CREMA-D -> DEST/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt.",
        "the CREMA-D folder (holding AudioWAV/)",
    )
    p.add_argument(
        "--split",
        choices=["random", "actor"],
        default="random",
        help="random: stratified 80/20, valid = test (authors); actor: actor-disjoint 80/10/10",
    )
    p.add_argument("--seed", type=int, default=2013)
    add_label_map(p)
    a = p.parse_args(argv)
    cfg = cremad.CremadConfig(
        split=a.split, seed=a.seed, min_samples=a.min_samples, label_map=a.label_map
    )
    return run(lambda: cremad.build(a.root, a.dest, cfg))


def lssed_main(argv=None) -> int:
    p = parser(
        "LSSED -> DEST/{train,valid}.tsv (+ .spk) for pretraining, from its metadata csv.",
        "the LSSED folder (metadata csv and audio)",
    )
    p.add_argument("--metadata", help="the metadata csv (default: the csv found under ROOT)")
    p.add_argument("--valid-percent", type=FRACTION, default=0.01, help="share in [0, 1)")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    cfg = lssed.LssedConfig(a.metadata, a.valid_percent, a.seed, a.min_samples)
    return run(lambda: lssed.build(a.root, a.dest, cfg))


def synthetic_main(argv=None) -> int:
    p = parser(
        "Generates the synthetic emotional-speech corpus in ROOT, then writes its manifests "
        "(held-out speakers for valid and test) to DEST.",
        "folder to generate the corpus in",
    )
    p.add_argument("--speakers", type=int, default=8)
    p.add_argument("--clips-per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-speakers", type=int, default=2)
    p.add_argument("--valid-speakers", type=int, default=1)
    a = p.parse_args(argv)

    def build() -> str:
        synthetic.generate(a.root, a.speakers, a.clips_per_class, a.seed)
        return synthetic.build(a.root, a.dest, a.test_speakers, a.valid_speakers)

    return run(build)


def emobox_main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="One corpus of EmoBox's partitions -> DEST/fold{k}/{train,valid,test}."
        "{tsv,emo,spk} + dict.emo.txt, EmoBox's train/test kept, valid carved from train."
    )
    p.add_argument("data", metavar="EMOBOX_DATA_DIR", help="EmoBox's data/ folder")
    p.add_argument("corpus", metavar="CORPUS", help="corpus folder name in it, e.g. iemocap")
    p.add_argument(
        "--audio-root",
        required=True,
        help="folder the records' wav paths are relative to (EmoBox's user folder holding "
        "downloads/, or downloads/ itself, or downloads/CORPUS)",
    )
    p.add_argument("--dest", required=True, help="output folder (fold folders, labels, cache)")
    add_label_map(p)
    p.add_argument(
        "--valid-percent",
        type=FRACTION,
        default=0.2,
        help="share of EmoBox's train carved as valid (by speaker where known) when EmoBox "
        "has no valid split",
    )
    p.add_argument("--seed", type=int, default=42, help="seed of the valid carving (+ fold)")
    p.add_argument(
        "--speaker-regex",
        help="regular expression whose groups give the speaker in a record's wav path "
        "(default: the built-in rule for CORPUS, if any)",
    )
    p.add_argument(
        "--min-samples", type=MIN_SAMPLES_ARG, default=MIN_SAMPLES, help=MIN_SAMPLES_HELP
    )
    a = p.parse_args(argv)

    def build() -> str:
        cfg = emobox.EmoboxConfig(
            a.label_map, a.valid_percent, a.seed, a.speaker_regex, a.min_samples
        )
        return emobox.build(a.data, a.corpus, a.audio_root, a.dest, cfg)

    return run(build)


def labelled_main(argv=None) -> int:
    p = parser(
        "Your labelled audio (a CSV/TSV table or one folder per class) -> "
        "DEST/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt.",
        "a table (path,label[,speaker][,split] columns; .tsv = tab-separated) or a folder "
        "holding one subfolder per class",
    )
    p.add_argument("--path-column", default="path", help="table column of the audio paths")
    p.add_argument("--label-column", default="label", help="table column of the labels")
    p.add_argument("--speaker-column", help="table column of the speakers [speaker, if present]")
    p.add_argument("--split-column", help="table column train/valid/test [split, if present]")
    p.add_argument("--audio-root", help="folder the table's paths are relative to [its folder]")
    add_label_map(p)
    p.add_argument("--valid-percent", type=FRACTION, default=0.1, help="share for valid")
    p.add_argument("--test-percent", type=FRACTION, default=0.1, help="share for test")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--speaker-regex", help="class folders: regex whose groups give the speaker")
    p.add_argument(
        "--classes",
        type=lambda text: tuple(c.strip() for c in text.split(",") if c.strip()),
        default=(),
        help="keep only these classes (after --label-map), in this order in dict.emo.txt; "
        "rows of other labels go to skipped.tsv [every label found]",
    )
    p.add_argument(
        "--ext",
        type=EXTENSIONS,
        default=user_labelled.DEFAULT_EXTS,
        help="class folders: comma-separated audio extensions",
    )
    a = p.parse_args(argv)
    return run(lambda: user_labelled.build(a.root, a.dest, labelled_config(a)))


def labelled_config(a: argparse.Namespace) -> "user_labelled.LabelledConfig":
    return user_labelled.LabelledConfig(
        a.path_column,
        a.label_column,
        a.speaker_column,
        a.split_column,
        a.audio_root,
        a.label_map,
        a.valid_percent,
        a.test_percent,
        a.seed,
        a.speaker_regex,
        a.ext,
        a.min_samples,
        a.classes,
    )
