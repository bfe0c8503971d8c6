"""image_dataset_from_directory: which files, in which order, with which labels and messages (Keras 3's)."""

import os

import numpy as np
import pytest

from convolab import keras
from support.image_folders import make_folder, solid

load = keras.utils.image_dataset_from_directory


def rel(paths, root):
    return [os.path.relpath(p, root).replace(os.sep, "/") for p in paths]


def test_sorted_order_class_names_and_labels_without_shuffle(tmp_path, capsys):
    n = make_folder(tmp_path)
    ds = load(tmp_path, shuffle=False, batch_size=4, image_size=(8, 8))
    assert capsys.readouterr().out == f"Found {n} files belonging to 3 classes.\n"
    assert ds.class_names == ["cat", "dog", "fish"]
    # Keras's order: classes in turn; per class the walk sorted by folder, files by name; a nested
    # folder counts for its top class; hidden top folders and other extensions are ignored.
    assert rel(ds.file_paths, tmp_path) == [
        "cat/cat0.bmp",
        "cat/cat0.gif",
        "cat/cat0.jpg",
        "cat/cat0.png",
        "cat/more/deep.png",
        "dog/broken.jpg",
        "dog/dog0.bmp",
        "dog/dog0.gif",
        "dog/dog0.jpg",
        "dog/dog0.png",
        "dog/grey.png",
        "fish/fish0.bmp",
        "fish/fish0.gif",
        "fish/fish0.jpg",
        "fish/fish0.png",
    ]
    assert len(ds) == 4  # ceil(15 / 4) batches
    assert isinstance(ds, keras.utils.PyDataset)


def test_shuffled_list_is_keras_seeded_permutation_with_matching_labels(tmp_path):
    make_folder(tmp_path, corrupt=False)
    ordered = load(tmp_path, shuffle=False, verbose=False).file_paths
    ds = load(tmp_path, shuffle=True, seed=7, verbose=False, batch_size=64, image_size=(4, 4))
    expected = list(ordered)
    np.random.RandomState(7).shuffle(expected)
    assert ds.file_paths == expected
    _, y = ds[0]
    assert [ds.class_names[k] for k in y] == [rel([p], tmp_path)[0].split("/")[0] for p in ds.file_paths]
    assert y.dtype == np.int32 and y.shape == (len(expected),)


def test_class_names_choose_and_order_the_classes(tmp_path, capsys):
    make_folder(tmp_path, corrupt=False)
    ds = load(tmp_path, class_names=["fish", "cat"], shuffle=False, batch_size=64, image_size=(4, 4))
    assert capsys.readouterr().out == "Found 9 files belonging to 2 classes.\n"
    _, y = ds[0]
    assert y.tolist() == [0] * 4 + [1] * 5
    with pytest.raises(ValueError, match=r"class_names \['cat', 'bird'\] must name subfolders.*not: \['bird'\]"):
        load(tmp_path, class_names=["cat", "bird"])


@pytest.mark.parametrize("subset, count", [("training", 12), ("validation", 3)])
def test_split_messages_and_sizes(tmp_path, capsys, subset, count):
    make_folder(tmp_path)
    ds = load(tmp_path, validation_split=0.2, subset=subset, seed=1, batch_size=5, image_size=(4, 4))
    out = capsys.readouterr().out
    assert out == f"Found 15 files belonging to 3 classes.\nUsing {count} files for {subset}.\n"
    assert len(ds.file_paths) == count and len(ds) == -(-count // 5)


def test_split_is_deterministic_disjoint_and_complete(tmp_path):
    make_folder(tmp_path, per_format=3)
    kw = dict(validation_split=0.25, seed=42, verbose=False, image_size=(4, 4))
    train = load(tmp_path, subset="training", **kw)
    val = load(tmp_path, subset="validation", **kw)
    both_train, both_val = load(tmp_path, subset="both", **kw)
    everything = load(tmp_path, seed=42, verbose=False).file_paths
    assert train.file_paths == both_train.file_paths and val.file_paths == both_val.file_paths
    assert not set(train.file_paths) & set(val.file_paths)
    assert train.file_paths + val.file_paths == everything  # the split follows the seeded list
    assert len(val.file_paths) == int(0.25 * len(everything))
    other = load(tmp_path, subset="validation", validation_split=0.25, seed=43, verbose=False)
    assert other.file_paths != val.file_paths


def test_labels_none_and_label_mode_none_give_images_only(tmp_path, capsys):
    make_folder(tmp_path, corrupt=False)
    ds = load(tmp_path, labels=None, shuffle=False, batch_size=3, image_size=(4, 4))
    # Without labels Keras walks the whole folder: .hidden/x.png counts too (14 + 1).
    assert capsys.readouterr().out == "Found 15 files.\n"
    assert ds.class_names is None
    assert ds[0].shape == (3, 4, 4, 3)
    assert load(tmp_path, label_mode=None, verbose=False, batch_size=3, image_size=(4, 4))[0].shape == (3, 4, 4, 3)


def test_labels_as_a_list_follow_sorted_paths(tmp_path, capsys):
    for i, colour in enumerate([(0, 0, 0), (50, 50, 50), (99, 99, 99)]):
        solid(tmp_path / f"img{i}.png", colour)
    solid(tmp_path / "sub" / "img3.png", (200, 200, 200))
    ds = load(tmp_path, labels=[3, 0, 3, 1], shuffle=False, batch_size=4, image_size=(2, 2))
    assert capsys.readouterr().out == "Found 4 files belonging to 3 classes.\n"
    assert ds.class_names == ["0", "1", "3"]
    x, y = ds[0]
    assert y.tolist() == [3, 0, 3, 1]
    assert x[:, 0, 0, 0].tolist() == [0, 50, 99, 200]
    with pytest.raises(ValueError, match=r"len\(labels\) = 3 for 4 image files"):
        load(tmp_path, labels=[0, 1, 0])
    with pytest.raises(ValueError, match="`class_names` goes with labels='inferred' only"):
        load(tmp_path, labels=[0, 1, 0, 1], class_names=["a", "b"])
    with pytest.raises(ValueError, match="list/tuple of int labels"):
        load(tmp_path, labels="folders")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(subset="training"), "`subset` and `validation_split` go together"),
        (dict(validation_split=0.2), "`subset` and `validation_split` go together"),
        (dict(validation_split=0.2, subset="training"), "pass a `seed`"),
        (dict(validation_split=1.5, subset="training", seed=1), "between 0 and 1"),
        (dict(validation_split=0.2, subset="train", seed=1), "'training', 'validation', 'both' or None; got 'train'"),
        (dict(label_mode="sparse"), "`label_mode` must be"),
        (dict(label_mode="binary"), "exactly 2 classes; got 3"),
        (dict(color_mode="hsv"), "`color_mode` must be one of"),
        (dict(batch_size=None), "unbatched samples are not supported"),
        (dict(image_size=(8, 0)), "`image_size` must be"),
        (dict(interpolation="gaussian"), "TensorFlow kernel that Pillow"),
        (dict(interpolation="cubic"), "`interpolation` must be one of"),
        (dict(crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), "at most one of"),
    ],
)
def test_bad_arguments_say_what_was_expected(tmp_path, kwargs, message):
    make_folder(tmp_path, corrupt=False)
    with pytest.raises(ValueError, match=message):
        load(tmp_path, verbose=False, **kwargs)


def test_missing_empty_and_flat_folders(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load(tmp_path / "nowhere")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "readme.txt").write_text("x")
    with pytest.raises(
        ValueError,
        match=r"no image files in the class folders \['cat'\].*1 other files ignored"
        r".*Allowed formats",
    ):
        load(tmp_path / "empty")
    solid(tmp_path / "flat" / "a.png", (1, 2, 3))
    with pytest.raises(ValueError, match="one subfolder per class.*1 image files lie directly in it: pass labels=None"):
        load(tmp_path / "flat")
    assert len(load(tmp_path / "flat", labels=None, verbose=False).file_paths) == 1


def test_split_that_leaves_a_side_empty_raises(tmp_path):
    for i in range(3):
        solid(tmp_path / "a" / f"{i}.png", (0, 0, 0))
    with pytest.raises(ValueError, match=r"validation_split=0.2 of 3 files leaves no files for validation"):
        load(tmp_path, validation_split=0.2, subset="training", seed=1)
