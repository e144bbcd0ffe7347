from . import (
    vesper,  # noqa: F401
    vesper_classifier,  # noqa: F401
)
