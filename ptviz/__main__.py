"""python -m ptviz: the ptviz-tui command."""

import sys

from ptviz.tui.cli import main

sys.exit(main())
