"""The options of the corpus builders, written once: each config field carries its default, its
help and how its command-line text is parsed; corpora/cli.py generates the command lines."""

from dataclasses import field

from vesper_fairseq.corpora.audio import MIN_SAMPLES
from vesper_fairseq.corpora.splits import check_fraction

LABEL_MAP_HELP = (
    "rename / merge / drop classes: map.json, a file of a=b lines, or ANG=ang,DIS= "
    "(an empty target drops the class)"
)


def option(default, help: str, *, flag: str | None = None, parse=None, choices=None):
    """A config field with its command-line help; `parse` turns the option's text into the
    value (raising ValueError on bad text), `flag` replaces the default --field-name."""
    metadata = {"help": help, "flag": flag, "parse": parse, "choices": choices}
    return field(default=default, metadata=metadata)


def check_min_samples(value: int) -> int:
    if value < 1:
        raise ValueError(f"min_samples must be at least 1, got {value}")
    return value


def parse_exts(text: str) -> tuple[str, ...]:
    exts = tuple(e.strip().lower().lstrip(".") for e in text.split(",") if e.strip(" ."))
    if not exts or any("/" in e for e in exts):
        raise ValueError(f"expected comma-separated file extensions such as wav,flac, got {text!r}")
    return exts


def parse_share(text: str) -> float:
    return check_fraction(float(text), "the share")


def share_option(default: float, help: str):
    return option(default, help, parse=parse_share)


def seed_option(default: int, help: str = "seed of the random split"):
    return option(default, help)


def min_samples_option():
    return option(
        MIN_SAMPLES,
        "skip clips shorter than this at 16 kHz (the model's receptive field)",
        parse=lambda text: check_min_samples(int(text)),
    )


def label_map_option(help: str = LABEL_MAP_HELP):
    return option(None, help)


def exts_option(default: tuple[str, ...], help: str = "comma-separated audio extensions"):
    return option(default, help, flag="--ext", parse=parse_exts)
