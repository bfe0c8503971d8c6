"""Small image folders for the image_dataset_from_directory tests, written with Pillow."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

# class -> solid colour (RGB); each class gets a PNG, a JPEG, a BMP and a GIF.
COLOURS = {"cat": (200, 10, 10), "dog": (10, 200, 10), "fish": (10, 10, 200)}
FORMATS = ("png", "jpg", "bmp", "gif")


def solid(path, colour, size=(12, 9), mode="RGB"):
    """Writes a solid-colour image of ``size`` = (width, height)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def make_folder(root, per_format=1, nested=True, corrupt=True, junk=True):
    """A folder ``root/{cat,dog,fish}`` of solid images in four formats.

    Adds, when asked: ``cat/more/deep.png`` (a nested folder: Keras counts it for ``cat``),
    ``dog/broken.jpg`` (not an image), ``fish/notes.txt`` and ``.hidden/x.png`` (both ignored).

    Returns:
        The expected number of listed image files.
    """
    root = Path(root)
    count = 0
    for name, colour in COLOURS.items():
        for k in range(per_format):
            for ext in FORMATS:
                solid(root / name / f"{name}{k}.{ext}", colour)
                count += 1
    solid(root / "dog" / "grey.png", 128, mode="L")
    count += 1
    if nested:
        solid(root / "cat" / "more" / "deep.png", COLOURS["cat"])
        count += 1
    if corrupt:
        (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg")
        count += 1
    if junk:
        (root / "fish" / "notes.txt").write_text("not an image")
        solid(root / ".hidden" / "x.png", (0, 0, 0))
    return count
