from . import vesper  # noqa: F401
from . import vesper_classifier  # noqa: F401
