"""Shared by every test folder: the ``support`` package (tests/support/) is importable from any of them.

Tests live in folders that mirror ``src/convolab`` (tests/nn/ for convolab.nn, tests/saving/ for
convolab.saving, ...); checks of the project as a whole (README, import graph) stay at the top.
Helpers that several test files share (reference implementations, gradient checks, fixtures that
write files) live in ``tests/support/``, never in a test module another test imports.
"""

import pathlib
import sys

_TESTS = str(pathlib.Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
