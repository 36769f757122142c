"""textedit's version, in one place: the package, patch.json and ``textedit --version`` read it
here, and ``pyproject.toml`` reads it statically (``[tool.setuptools.dynamic]``)."""

__version__ = "0.1.0"


def version_line() -> str:
    """What ``textedit --version`` prints, from the console entry or the CLI."""
    return f"textedit {__version__}"
