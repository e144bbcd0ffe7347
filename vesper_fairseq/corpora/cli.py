"""The command lines behind ``manifests/*.py`` (also usable as console-script entry points).

Every option of a builder comes from a field of its config dataclass (default, help, parsing:
corpora/options.py); only ROOT, --dest and the EmoBox location are written here."""

import argparse
import dataclasses
import sys
from collections.abc import Callable

from vesper_fairseq.corpora import (
    audio_folder,
    cremad,
    emobox,
    emobox_track2,
    iemocap,
    lssed,
    meld,
    synthetic,
    user_labelled,
)
from vesper_fairseq.corpora.manifest import CorpusLayoutError
from vesper_fairseq.io_utils import LockedError
from vesper_fairseq.logging_setup import setup_logging


def _checked(parse: Callable) -> Callable:
    """An argparse ``type`` from a parser that raises ValueError (a bad value: one usage error)."""

    def checked(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return checked


def _shown(default) -> str:
    return ",".join(default) if isinstance(default, tuple) else str(default)


def add_config_options(p: argparse.ArgumentParser, config, skip=()) -> None:
    """One option per field of the dataclass `config` (--field-name unless the field names its
    flag), with the field's default, help and parser; a False bool is a switch."""
    for f in dataclasses.fields(config):
        if f.name in skip:
            continue
        meta = f.metadata
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        if f.default is False:
            p.add_argument(flag, dest=f.name, action="store_true", help=meta["help"])
            continue
        parse = _checked(meta["parse"]) if meta.get("parse") else None
        kind = parse or (type(f.default) if f.default is not None else str)
        shown = "" if f.default in (None, ()) else f" [default: {_shown(f.default)}]"
        p.add_argument(
            flag,
            dest=f.name,
            type=kind,
            default=f.default,
            choices=meta.get("choices"),
            metavar=None if meta.get("choices") else flag[2:].upper().replace("-", "_"),
            help=meta["help"] + shown,
        )


def config_from_args(config, args: argparse.Namespace, **given):
    """The `config` dataclass from the parsed options (and `given` values)."""
    names = {f.name for f in dataclasses.fields(config)}
    return config(**{k: v for k, v in vars(args).items() if k in names}, **given)


PUBLISHED_ROOT = "the corpus folder as its publisher ships it"


def parser(description: str, config, root_help: str = PUBLISHED_ROOT, skip=()):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("root", metavar="ROOT", help=root_help)
    p.add_argument("--dest", required=True, help="output folder (manifests, labels, cache)")
    add_config_options(p, config, skip)
    return p


def run(build: Callable[[], str]) -> int:
    """Runs a builder, prints its summary; a bad ROOT or option gives one error line, exit 2."""
    setup_logging()
    try:
        summary = build()
    except (CorpusLayoutError, ValueError, OSError, LockedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def builder_main(argv, module, config, description: str, root_help: str, skip=()) -> int:
    """ROOT, --dest and the options of `config` -> module.build(ROOT, DEST, config)."""
    a = parser(description, config, root_help, skip).parse_args(argv)
    return run(lambda: module.build(a.root, a.dest, config_from_args(config, a)))


def audio_folder_main(argv=None) -> int:
    return builder_main(
        argv,
        audio_folder,
        audio_folder.AudioFolderConfig,
        "Any folder of audio -> DEST/{train,valid}.tsv for pretraining (no labels).",
        PUBLISHED_ROOT,
    )


def iemocap_main(argv=None) -> int:
    return builder_main(
        argv,
        iemocap,
        iemocap.IemocapConfig,
        "IEMOCAP -> DEST/fold{1..5}/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt, "
        "leave-one-session-out (test = Session f).",
        "IEMOCAP_full_release (holding Session1..Session5)",
    )


def meld_main(argv=None) -> int:
    return builder_main(
        argv,
        meld,
        meld.MeldConfig,
        "MELD -> DEST/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt; mp4 clips are decoded "
        "to 16 kHz mono wav in DEST/wav16k.",
        "MELD.Raw (the three *_sent_emo.csv and the extracted clip folders)",
    )


# the authors' shares of each CREMA-D split: not options of the command line
CREMAD_FIXED = ("test_percent", "valid_percent")


def cremad_main(argv=None) -> int:
    return builder_main(
        argv,
        cremad,
        cremad.CremadConfig,
        "CREMA-D -> DEST/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt.",
        "the CREMA-D folder (holding AudioWAV/)",
        skip=CREMAD_FIXED,
    )


def lssed_main(argv=None) -> int:
    return builder_main(
        argv,
        lssed,
        lssed.LssedConfig,
        "LSSED -> DEST/{train,valid}.tsv (+ .spk) for pretraining, from its metadata csv.",
        "the LSSED folder (metadata csv and audio)",
    )


def synthetic_main(argv=None) -> int:
    p = parser(
        "Generates the synthetic emotional-speech corpus in ROOT, then writes its manifests "
        "(held-out speakers for valid and test) to DEST.",
        synthetic.SyntheticConfig,
        "folder to generate the corpus in",
    )
    a = p.parse_args(argv)
    cfg = config_from_args(synthetic.SyntheticConfig, a)

    def build() -> str:
        synthetic.generate(a.root, cfg.speakers, cfg.clips_per_class, cfg.seed)
        return synthetic.build(a.root, a.dest, cfg.test_speakers, cfg.valid_speakers)

    return run(build)


def emobox_main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="One corpus of EmoBox's partitions -> DEST/fold{k}/{train,valid,test}."
        "{tsv,emo,spk} + dict.emo.txt, EmoBox's train/test kept, valid carved from train.",
    )
    p.add_argument("data", metavar="EMOBOX_DATA_DIR", help="EmoBox's data/ folder")
    p.add_argument(
        "corpus",
        metavar="CORPUS",
        help="corpus folder name in it, e.g. iemocap; or track2/NAME (e.g. track2/IEMOCAP): "
        "one of EmoBox's cross-corpus test sets -> DEST/test.{tsv,emo,spk} + dict.emo.txt",
    )
    p.add_argument(
        "--audio-root",
        required=True,
        help="folder the records' wav paths are relative to (EmoBox's user folder holding "
        "downloads/, or downloads/ itself, or downloads/CORPUS); for track2/NAME the corpus' "
        "audio folder (a file not found as written is found by its unique file name)",
    )
    p.add_argument("--dest", required=True, help="output folder (fold folders, labels, cache)")
    add_config_options(p, emobox.EmoboxConfig)
    a = p.parse_args(argv)

    def build() -> str:
        cfg = config_from_args(emobox.EmoboxConfig, a)
        builder = emobox_track2.build if emobox_track2.is_track2(a.corpus) else emobox.build
        return builder(a.data, a.corpus, a.audio_root, a.dest, cfg)

    return run(build)


def labelled_main(argv=None) -> int:
    return builder_main(
        argv,
        user_labelled,
        user_labelled.LabelledConfig,
        "Your labelled audio (a CSV/TSV table or one folder per class) -> "
        "DEST/{train,valid,test}.{tsv,emo,spk} + dict.emo.txt.",
        "a table (path,label[,speaker][,split] columns; .tsv = tab-separated) or a folder "
        "holding one subfolder per class",
    )
