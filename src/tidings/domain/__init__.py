"""Domain: frozen dataclasses, enums and pure rules. No I/O, no imports outside ``tidings.domain``,
``tidings.ids``, ``tidings.errors``."""
