from . import (
    emotion_cross_entropy,  # noqa: F401
    vesper_distill,  # noqa: F401
)
