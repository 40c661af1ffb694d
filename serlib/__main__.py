"""``python -m serlib`` is the ``serlib`` command."""

import sys

from serlib.app.cli import main

sys.exit(main())
