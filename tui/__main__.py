"""python -m ptviz.tui: the ptviz-tui command."""

import sys

from .cli import main

sys.exit(main())
