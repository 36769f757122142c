"""``python -m textedit.cli``: the command line (``torchrun ... -m textedit.cli stats``, docs/scale.md)."""

from . import main

main()
