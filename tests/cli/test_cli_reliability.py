"""The convolab command under misuse: bad paths and images, unwritable outputs, Ctrl-C, --help text.

Every bad path prints one line naming it and exits 1 (2 for a bad command line), never a traceback;
``train`` checks --out before training, saves the model before the figures, and keeps the last
finished epoch when interrupted.
"""

import argparse
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

from convolab import datasets, saving, zoo  # noqa: E402
from convolab.cli import build_parser, main  # noqa: E402
from convolab.cli import train as train_cmd  # noqa: E402
from convolab.random import set_random_seed  # noqa: E402
from support.paths import SRC  # noqa: E402


def one_error_line(err, *fragments, starts="convolab: error: "):
    """stderr holds exactly one line, starting with ``starts`` and holding every fragment; no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(starts), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], err
    return lines[0]


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path, width, height):
    """A valid 1-bit PNG of ``width`` x ``height`` black pixels: a few KB on disk, ``width * height``
    pixels once decoded (a decompression bomb when that is over Pillow's limit)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    )
    return str(path)


@pytest.fixture
def digit_png(tmp_path):
    x, _ = datasets.load_sample()
    path = tmp_path / "digit.png"
    Image.fromarray(x[0]).save(path)
    return str(path)


def bad_paths(tmp_path, good_png):
    """name -> a path the CLI must refuse with one line naming it."""
    truncated = tmp_path / "truncated.png"
    data = Path(good_png).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"these bytes are not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    paths = {
        "missing": str(tmp_path / "missing.png"),
        "directory": str(folder),
        "junk": str(junk),
        "empty": str(empty),
        "truncated": str(truncated),
        "under_a_file": str(Path(good_png) / "x.png"),
    }
    if hasattr(os, "mkfifo"):  # reading a pipe with no writer would block for ever
        os.mkfifo(tmp_path / "pipe.png")
        paths["pipe"] = str(tmp_path / "pipe.png")
    if os.path.isfile("/proc/self/mem"):  # a file that exists and cannot be read, even by root
        paths["unreadable"] = "/proc/self/mem"
    return paths


@pytest.fixture
def small_pillow_limit(monkeypatch):
    """Pillow's decompression-bomb limit lowered to 1,000 pixels: warns over 1,000, refuses over 2,000."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)


@pytest.fixture
def saved_model(tmp_path):
    set_random_seed(0)
    model = zoo.simple_cnn()
    path = tmp_path / "model.convolab"
    model.save(str(path))
    return str(path)


# -- images --------------------------------------------------------------------------------------

KINDS = ["missing", "directory", "junk", "empty", "truncated", "under_a_file", "pipe", "unreadable", "bomb"]


@pytest.mark.parametrize("kind", KINDS)
def test_filters_refuses_a_bad_image_in_one_line(capsys, tmp_path, digit_png, small_pillow_limit, kind):
    paths = bad_paths(tmp_path, digit_png)
    paths["bomb"] = bomb_png(tmp_path / "bomb.png", 50, 50)  # 2,500 pixels > twice the lowered limit
    if kind not in paths:
        pytest.skip(f"no {kind} file on this system")
    out = tmp_path / "fig.png"
    assert main(["filters", digit_png, paths[kind], "--kernel", "sobel_x", "--out", str(out)]) == 1
    one_error_line(capsys.readouterr().err, paths[kind])
    assert not out.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_predict_refuses_a_bad_image_in_one_line(capsys, tmp_path, digit_png, saved_model, small_pillow_limit, kind):
    paths = bad_paths(tmp_path, digit_png)
    paths["bomb"] = bomb_png(tmp_path / "bomb.png", 50, 50)
    if kind not in paths:
        pytest.skip(f"no {kind} file on this system")
    assert main(["predict", saved_model, digit_png, paths[kind]]) == 1
    one_error_line(capsys.readouterr().err, paths[kind])


def test_an_image_over_the_warning_limit_is_read_with_a_note(capsys, tmp_path, saved_model, small_pillow_limit):
    big = bomb_png(tmp_path / "big.png", 40, 40)  # 1,600 pixels: over the limit, under twice it
    assert main(["predict", saved_model, big]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{big}: ")
    assert "40x40 pixels, more than Pillow's decompression-bomb warning limit of 1,000" in captured.err
    assert "DecompressionBombWarning" not in captured.err


@pytest.mark.parametrize("command", ["filters", "predict"])
def test_a_real_decompression_bomb_is_one_line(tmp_path, saved_model, command):
    """400 million pixels in 50 KB, at Pillow's own limit, in a fresh process."""
    bomb = bomb_png(tmp_path / "bomb.png", 20000, 20000)
    assert os.path.getsize(bomb) < 100_000
    argv = (
        ["filters", bomb, "--kernel", "sobel_x", "--out", str(tmp_path / "o.png")]
        if command == "filters"
        else ["predict", saved_model, bomb]
    )
    result = _run(*argv)
    assert result.returncode == 1, result.stderr
    one_error_line(result.stderr, bomb, "decompression bomb")


@pytest.mark.parametrize("kind", ["missing", "directory", "junk", "empty", "under_a_file", "pipe"])
@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_a_bad_model_path_is_one_line(capsys, tmp_path, digit_png, kind, command):
    paths = bad_paths(tmp_path, digit_png)
    if kind not in paths:
        pytest.skip(f"no {kind} file on this system")
    model = paths[kind]
    argv = {
        "predict": ["predict", model, digit_png],
        "evaluate": ["evaluate", model, "--dataset", "mnist", "--offline"],
        "export": ["export", model, str(tmp_path / "m.onnx")],
    }[command]
    assert main(argv) == 1
    one_error_line(capsys.readouterr().err, model)


# -- .npz data ---------------------------------------------------------------------------------------


def npz_cases(tmp_path):
    x, y = datasets.load_sample()
    good = tmp_path / "good.npz"
    np.savez(good, x_train=x[:64], y_train=y[:64], x_test=x[64:80], y_test=y[64:80])
    data = good.read_bytes()
    cases = {"truncated": data[: len(data) // 2], "junk": b"not a zip archive at all", "empty": b""}
    paths = {}
    for name, content in cases.items():
        paths[name] = tmp_path / f"{name}.npz"
        paths[name].write_bytes(content)
    np.save(tmp_path / "lone.npy", x[:4])
    paths["lone_array"] = (tmp_path / "lone.npy").rename(tmp_path / "lone.npz")
    np.savez(
        tmp_path / "objects.npz", x_train=np.array([None, 1], dtype=object), y_train=y[:2], x_test=x[:2], y_test=y[:2]
    )
    paths["objects"] = tmp_path / "objects.npz"
    paths["directory"] = tmp_path / "folder.npz"
    paths["directory"].mkdir()
    paths["missing"] = tmp_path / "missing.npz"
    return {k: str(v) for k, v in paths.items()}


@pytest.mark.parametrize("kind", ["truncated", "junk", "empty", "lone_array", "objects", "directory", "missing"])
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_bad_npz_is_one_line(capsys, tmp_path, saved_model, kind, command):
    npz = npz_cases(tmp_path)[kind]
    out = tmp_path / "out"
    argv = (
        ["train", "--dataset", "mnist", "--data-dir", npz, "--epochs", "1", "--out", str(out)]
        if command == "train"
        else ["evaluate", saved_model, "--dataset", "mnist", "--data-dir", npz]
    )
    assert main(argv) == 1
    one_error_line(capsys.readouterr().err, npz)


# -- unwritable --out ----------------------------------------------------------------------------------


@pytest.fixture
def sample_npz(tmp_path):
    x, y = datasets.load_sample()
    path = tmp_path / "sample.npz"
    np.savez(path, x_train=x[:96], y_train=y[:96], x_test=x[96:128], y_test=y[96:128])
    return str(path)


@pytest.fixture
def no_fit(monkeypatch):
    """Training fails the test: the output must be checked before any epoch runs."""
    from convolab.models.trainer import Trainer

    def fit(self, *args, **kwargs):
        raise AssertionError("fit ran although --out cannot be written")

    monkeypatch.setattr(Trainer, "fit", fit)


def unwritable_outs(tmp_path):
    """Output folders nothing can be written in, even as root (where chmod stops nothing)."""
    a_file = tmp_path / "file.txt"
    a_file.write_text("a file, not a folder")
    outs = {"a_file": str(a_file), "under_a_file": str(a_file / "sub")}
    blocked = tmp_path / "blocked"
    (blocked / "model.convolab").mkdir(parents=True)  # the model file's name is taken by a folder
    outs["model_name_taken"] = str(blocked)
    if os.path.isdir("/proc") and _cannot_create_in("/proc"):  # exists, yet takes no new file
        outs["proc"] = "/proc"
    return outs


def _cannot_create_in(folder):
    try:
        with open(os.path.join(folder, ".convolab-test-probe"), "x"):
            pass
    except OSError:
        return True
    os.unlink(os.path.join(folder, ".convolab-test-probe"))
    return False


@pytest.mark.parametrize("kind", ["a_file", "under_a_file", "model_name_taken", "proc"])
def test_train_checks_out_before_training(capsys, tmp_path, sample_npz, no_fit, kind):
    outs = unwritable_outs(tmp_path)
    if kind not in outs:
        pytest.skip(f"no {kind} folder on this system")
    argv = ["train", "--dataset", "mnist", "--data-dir", sample_npz, "--epochs", "1", "--out", outs[kind]]
    assert main(argv) == 1
    one_error_line(capsys.readouterr().err, "--out", outs[kind])


@pytest.mark.parametrize("kind", ["a_file", "under_a_file", "model_name_taken", "proc"])
def test_train_on_a_folder_checks_out_before_reading_it(capsys, tmp_path, no_fit, kind):
    from support.image_folders import make_folder

    outs = unwritable_outs(tmp_path)
    if kind not in outs:
        pytest.skip(f"no {kind} folder on this system")
    make_folder(tmp_path / "photos", corrupt=False, junk=False)
    assert main(["train", "--data-dir", str(tmp_path / "photos"), "--epochs", "1", "--out", outs[kind]]) == 1
    one_error_line(capsys.readouterr().err, "--out", outs[kind])


@pytest.mark.parametrize("command", ["demo", "evaluate", "filters", "export"])
def test_other_outputs_are_checked_first(capsys, tmp_path, saved_model, digit_png, command):
    a_file = tmp_path / "file.txt"
    a_file.write_text("a file, not a folder")
    out = str(a_file / "sub")
    argv = {
        "demo": ["demo", "--samples", "50", "--epochs", "1", "--out", out],
        "evaluate": ["evaluate", saved_model, "--dataset", "mnist", "--offline", "--out", out],
        "filters": ["filters", digit_png, "--kernel", "sobel_x", "--out", out + "/f.png"],
        "export": ["export", saved_model, out + "/m.onnx"],
    }[command]
    assert main(argv) == 1
    line = one_error_line(capsys.readouterr().err, out)
    assert ".convolab-tmp" not in line  # the target is named, not a temporary file beside it


def test_train_saves_the_model_before_the_figures(capsys, monkeypatch, tmp_path, sample_npz):
    from convolab import plot

    def broken_plot(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out" / "training_curves.png"))

    monkeypatch.setattr(plot, "plot_results", broken_plot)
    out = tmp_path / "out"
    assert main(["train", "--dataset", "mnist", "--data-dir", sample_npz, "--epochs", "1", "--out", str(out)]) == 1
    one_error_line(capsys.readouterr().err, "No space left on device")
    model = saving.load_model(str(out / "model.convolab"))
    assert model.count_params() == 52084
    assert (out / "history.json").exists()


# -- Ctrl-C --------------------------------------------------------------------------------------------


class InterruptingTimer(train_cmd.EpochTimer):
    """The CLI's epoch timer, also recording the weights after each epoch and pressing Ctrl-C in a batch."""

    def __init__(self, at_epoch, at_batch=2):
        super().__init__()
        self.at_epoch, self.at_batch = at_epoch, at_batch
        self.weights = []

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.weights.append([w.copy() for w in self.model.get_weights()])

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.at_epoch and batch == self.at_batch:
            self.weights_at_interrupt = [w.copy() for w in self.model.get_weights()]
            raise KeyboardInterrupt


@pytest.fixture
def interrupt_at(monkeypatch):
    timers = []

    def install(epoch):
        def make():
            timers.append(InterruptingTimer(epoch))
            return timers[-1]

        monkeypatch.setattr(train_cmd, "EpochTimer", make)
        return timers

    return install


def test_ctrl_c_keeps_the_last_finished_epoch(capsys, tmp_path, sample_npz, interrupt_at):
    timers = interrupt_at(2)  # in the third epoch
    out = tmp_path / "out"
    argv = [
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        sample_npz,
        "--epochs",
        "5",
        "--batch-size",
        "16",
        "--seed",
        "0",
        "--out",
        str(out),
    ]
    assert main(argv) == 130
    path = (out / "model.convolab").resolve()
    line = one_error_line(capsys.readouterr().err, starts="convolab: interrupted: ")
    assert line == (
        f"convolab: interrupted: in epoch 3 of 5; the model after epoch 2 (weights and optimizer "
        f"state) is saved in {path}"
    )
    (timer,) = timers
    assert len(timer.weights) == 2
    model = saving.load_model(str(path))
    for got, want in zip(model.get_weights(), timer.weights[1]):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, b) for a, b in zip(timer.weights[1], timer.weights_at_interrupt))
    assert int(model.optimizer.iterations) == 2 * 6  # 96 images in batches of 16: resumable from epoch 2


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved(capsys, tmp_path, sample_npz, interrupt_at):
    interrupt_at(0)
    out = tmp_path / "out"
    assert main(["train", "--dataset", "mnist", "--data-dir", sample_npz, "--epochs", "3", "--out", str(out)]) == 130
    one_error_line(
        capsys.readouterr().err,
        "in epoch 1 of 3; no epoch had finished, so no model was saved",
        starts="convolab: interrupted: ",
    )
    assert not (out / "model.convolab").exists()


def test_ctrl_c_on_an_image_folder_keeps_the_last_finished_epoch(capsys, tmp_path, interrupt_at):
    from support.image_folders import make_folder

    timers = interrupt_at(1)
    make_folder(tmp_path / "photos", corrupt=False, junk=False)
    out = tmp_path / "out"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(tmp_path / "photos"),
                "--model",
                "simple",
                "--image-size",
                "12",
                "--batch-size",
                "2",
                "--epochs",
                "4",
                "--out",
                str(out),
            ]
        )
        == 130
    )
    path = (out / "model.convolab").resolve()
    one_error_line(
        capsys.readouterr().err, "in epoch 2 of 4; the model after epoch 1", str(path), starts="convolab: interrupted: "
    )
    for got, want in zip(saving.load_model(str(path)).get_weights(), timers[0].weights[0]):
        np.testing.assert_array_equal(got, want)


def test_sigint_to_a_training_process(tmp_path, sample_npz):
    """A real Ctrl-C (SIGINT) once the first epoch is on disk: exit 130, the file loads, the message says where."""
    x, y = datasets.load_sample()
    data = tmp_path / "more.npz"
    np.savez(data, x_train=np.concatenate([x] * 2), y_train=np.concatenate([y] * 2), x_test=x[:64], y_test=y[:64])
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "convolab.cli",
            "train",
            "--dataset",
            "mnist",
            "--data-dir",
            str(data),
            "--epochs",
            "100",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "model.convolab").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    line = one_error_line(err, f"saved in {(out / 'model.convolab').resolve()}", starts="convolab: interrupted: ")
    epoch = int(line.split("the model after epoch ")[1].split()[0])
    assert epoch >= 1
    model = saving.load_model(str(out / "model.convolab"))
    assert model.count_params() == 52084
    assert int(model.optimizer.iterations) == epoch * len(x) * 2 // 32


# -- --help ----------------------------------------------------------------------------------------


def _subcommands():
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def test_every_subcommand_is_listed():
    assert {"demo", "train", "filters", "predict", "evaluate", "export"} <= set(_subcommands())


@pytest.mark.parametrize("argv", [["--help"]] + [[name, "--help"] for name in _subcommands()])
def test_help_text_has_no_doubled_percent(capsys, argv):
    """A description is printed as written, argument help goes through %-formatting: '%%' belongs only
    in the latter, and shows up literally anywhere else."""
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: convolab")
    assert "%%" not in text and "%(" not in text


def test_demo_help_says_80_percent(capsys):
    assert main(["demo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(80% train, 20% validation)" in text and "80% for training" in text


# -- in a real process ------------------------------------------------------------------------------


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "convolab.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )
