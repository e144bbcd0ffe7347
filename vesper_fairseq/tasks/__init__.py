from . import vesper_pretraining  # noqa: F401
