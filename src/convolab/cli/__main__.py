"""``python -m convolab.cli``: the same as the ``convolab`` command."""

import sys

from . import main

sys.exit(main())
