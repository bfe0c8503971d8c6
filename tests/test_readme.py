"""README.md runs as written (issue 21): every code block, on a fresh install, offline.

Each fenced block in README.md names its language: ``python`` and ``bash`` blocks are run, ``text``
blocks (printed output, file contents) are not. Every ``python`` block runs in a fresh interpreter
and every ``bash`` block under ``bash -e -o pipefail``, each in its own empty temporary folder,
with the network switched off: a ``sitecustomize`` on ``PYTHONPATH`` makes every Python socket
connection outside the machine raise, and ``$CONVOLAB_DATA_DIR`` points at an empty cache, so a
block that needs a download fails here as it would for a user without one.

A block the test cannot run says why on the line before its fence, where a reader sees it too::

    <!-- readme-test: skip: needs an NVIDIA GPU -->

It is still compiled (Python) or parsed (``bash -n``). ``<!-- readme-test: needs: h5py -->`` runs
a block only where that module imports (an optional extra the block itself names).

The working folder holds what a block's text says the reader brings: ``photo.jpg`` (a picture)
and ``photos/cat/``, ``photos/dog/`` (a folder of class subfolders), made here and tiny.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LANGUAGES = ("python", "bash", "text")
TIMEOUT_S = 120  # per block; the whole file takes well under a minute on 2 cores

_FENCE = re.compile(r"^```(.*)$")
_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(\w+)\s*:\s*(.*?)\s*-->$")

# Python's own sockets refuse anything but local (AF_UNIX) connections in every block's interpreter.
_SITECUSTOMIZE = """\
import socket

_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _guard(real):
    def connect(self, *args, **kwargs):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real(self, *args, **kwargs)
        raise OSError("network disabled by tests/test_readme.py: this README block needs a download")
    return connect


socket.socket.connect = _guard(_connect)
socket.socket.connect_ex = _guard(_connect_ex)
"""


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    directive: str | None = None  # 'skip' or 'needs'
    argument: str = ""

    @property
    def id(self):
        return f"README.md:{self.line}-{self.language}"


def parse_blocks(text):
    """Every fenced block of ``text`` with the ``readme-test`` comment just before it, if any."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, language = i, match.group(1).strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        if end is None:
            raise ValueError(f"README.md:{start + 1}: a ``` fence that is never closed")
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        block = Block(start + 1, language, "\n".join(lines[start + 1 : end]) + "\n")
        directive = _DIRECTIVE.match(previous)
        if directive:
            block.directive, block.argument = directive.group(1), directive.group(2)
        elif previous.startswith("<!--") and "readme-test" in previous:
            raise ValueError(
                f"README.md:{start}: cannot read {previous!r}; write "
                "'<!-- readme-test: skip: REASON -->' or '<!-- readme-test: needs: MODULE -->'"
            )
        blocks.append(block)
        i = end + 1
    return blocks


BLOCKS = parse_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [b for b in BLOCKS if b.language in ("python", "bash")]


def test_every_block_names_a_known_language_and_directive():
    assert len(RUNNABLE) >= 10, "README.md should have its code blocks; the parser found too few"
    for block in BLOCKS:
        assert block.language in LANGUAGES, (
            f"{block.id}: a fenced block must say what it is ({', '.join(LANGUAGES)}); got {block.language!r}"
        )
        if "pip install" in block.code and block.language == "bash":
            # Never run: it would install into the environment running the tests.
            assert block.directive == "skip", f"{block.id} installs packages; mark it '<!-- readme-test: skip: ... -->'"
        if block.directive is None:
            continue
        assert block.directive in ("skip", "needs"), f"{block.id}: unknown readme-test directive {block.directive!r}"
        assert block.language != "text", f"{block.id}: a text block is never run; drop its readme-test comment"
        if block.directive == "skip":
            # A reason a reader can act on, not a bare 'skip'.
            assert len(block.argument.split()) >= 2, (
                f"{block.id}: a skipped block needs a reason; got {block.argument!r}"
            )
        else:
            for name in _modules(block):
                assert re.fullmatch(r"[A-Za-z_][\w.]*", name), f"{block.id}: 'needs' takes module names; got {name!r}"


def _modules(block):
    return [name.strip() for name in block.argument.split(",") if name.strip()]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """The environment every block runs in: the venv's commands first, no network, an empty data cache."""
    root = tmp_path_factory.mktemp("readme")
    site = root / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVOLAB_", "PYTHON"))}
    env.update(
        {
            "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p),
            "CONVOLAB_DATA_DIR": str(root / "empty-cache"),
            "CONVOLAB_SPIN_US": "0",  # the machine is shared with the rest of the suite
            "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def _reader_files(folder):
    """What the README's text tells its reader to bring: a picture and a folder of photos by class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / "photo.jpg")
    for name in ("cat", "dog"):
        (folder / "photos" / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "photos" / name / f"{name}_{i}.png")


def _run(block, env, folder):
    _reader_files(folder)
    if block.language == "python":
        (folder / "block.py").write_text(block.code, encoding="utf-8")
        command = [sys.executable, "block.py"]
    else:
        (folder / "block.sh").write_text(block.code, encoding="utf-8")
        command = ["bash", "-e", "-o", "pipefail", "block.sh"]
    try:
        return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.id} ran past {TIMEOUT_S} s:\n{block.code}\n{exc.stdout or ''}{exc.stderr or ''}")


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_readme_block(block, sandbox, tmp_path):
    if block.language == "bash" and "pip install" in block.code:
        assert block.directive == "skip", f"{block.id} would install packages into the test's environment"
    if block.directive == "skip":
        _check_syntax(block, tmp_path)
        pytest.skip(f"{block.id}: {block.argument}")
    if block.directive == "needs":
        missing = [m for m in _modules(block) if importlib.util.find_spec(m) is None]
        if missing:
            _check_syntax(block, tmp_path)
            pytest.skip(f"{block.id}: needs {', '.join(missing)}")
    result = _run(block, sandbox, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"{block.id} failed (exit {result.returncode}):\n{block.code}\n--- output ---\n{output[-6000:]}"
    )
    # argparse prints '%%' literally where a description (not a help string) escaped a '%'.
    assert "%%" not in result.stdout, f"{block.id} printed a literal '%%':\n{result.stdout}"


def _check_syntax(block, folder):
    if block.language == "python":
        compile(block.code, block.id, "exec")
        return
    script = folder / "block.sh"
    script.write_text(block.code, encoding="utf-8")
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, f"{block.id} is not valid bash:\n{result.stderr}"


def test_sandbox_has_no_network(sandbox, tmp_path):
    """The guard works: a block that needs the internet fails here, whatever this machine can reach."""
    code = (
        "import urllib.request\n"
        "try:\n    urllib.request.urlopen('http://192.0.2.1/', timeout=5)\n"
        "except OSError as exc:\n    print('refused:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=sandbox, capture_output=True, text=True, timeout=60
    )
    assert "network disabled by tests/test_readme.py" in result.stdout, result.stdout + result.stderr


def test_skipped_blocks_compile(tmp_path):
    """A skipped block is still at least valid Python or bash (the skip hides its running, not its typos)."""
    skipped = [b for b in RUNNABLE if b.directive == "skip"]
    assert skipped, "README.md marks no block as skipped; the GPU and mpiexec blocks should be"
    for block in skipped:
        _check_syntax(block, tmp_path)


def test_two_commands_match_ci():
    """README's test command is what .ci/run runs on a clean clone."""
    text = README.read_text(encoding="utf-8")
    assert "\n## Two commands\n" in text, "README.md lost its 'Two commands' section"
    section = text.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    commands = [b for b in parse_blocks(section) if b.language == "bash"]
    assert len(commands) == 2, f"'Two commands' should hold two bash blocks; found {len(commands)}"
    install, test = (shlex.split(b.code.strip()) for b in commands)
    assert install[:3] == ["pip", "install", "."] and "demo" in install, install
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_commands = [shlex.split(line) for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for part in _split_and(test):
        assert part in ci_commands, f".ci/run does not run README's test command {shlex.join(part)!r}"


def _split_and(words):
    parts, current = [], []
    for word in words:
        if word == "&&":
            parts.append(current)
            current = []
        else:
            current.append(word)
    return parts + [current]


def test_readme_has_a_reliability_section():
    text = README.read_text(encoding="utf-8")
    assert "\n## Reliability\n" in text
    assert "ModelFileError" in text.split("\n## Reliability\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_resolve(page):
    """Every link to a file of the repository (figures, docs/, examples/) points at one that exists."""
    text = page.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    broken = []
    for target in targets:
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{page.name}: links to missing files: {broken}"
