"""``python -m qwem_lib``: the ``qwem`` command (see :mod:`qwem_lib.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
