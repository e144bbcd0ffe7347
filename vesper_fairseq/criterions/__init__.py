from . import vesper_distill  # noqa: F401
