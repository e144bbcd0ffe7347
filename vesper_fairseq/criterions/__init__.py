from . import vesper_distill  # noqa: F401
from . import emotion_cross_entropy  # noqa: F401
