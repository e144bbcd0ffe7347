from . import epoch_cosine  # noqa: F401
