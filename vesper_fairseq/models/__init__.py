from . import vesper  # noqa: F401
