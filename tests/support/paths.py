"""Where the project's folders are, for tests that run scripts or read sources by path (one place,
instead of counting ``Path(__file__).parents`` from each test folder's depth)."""

from pathlib import Path

#: tests/
TESTS = Path(__file__).resolve().parents[1]
#: the repository root (README.md, pyproject.toml)
REPO = TESTS.parent
#: src/, the folder that holds the ``convolab`` package
SRC = REPO / "src"
#: benchmarks/
BENCHMARKS = REPO / "benchmarks"
