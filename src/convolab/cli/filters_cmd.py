"""``convolab filters``: run a classic convolution filter over your own images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import note, parse_kernel, positive_int, read_image, writable_file


def add_parser(sub, formatter):
    from ..filters import KERNELS

    p = sub.add_parser(
        "filters",
        formatter_class=formatter,
        help="apply a convolution filter (vertical_edge, sobel_x, blur, ...) to image files",
        description=(
            "Draw the lesson's convolution figure for your images: each image above, "
            "filtered below, the kernel on the right. Kernels: "
            + ", ".join(KERNELS)
            + ", or your own as a nested list."
        ),
        epilog=(
            "examples:\n"
            "  convolab filters cat.jpg --kernel sobel_x\n"
            "  convolab filters a.png b.png --kernel '[[-1,0,1],[-1,0,1]]' --grey --out edges.png"
        ),
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG/... files")
    p.add_argument(
        "--kernel",
        required=True,
        metavar="NAME|LIST",
        help="a kernel name or a nested list of numbers, e.g. '[[-1,0,1],[-1,0,1],[-1,0,1]]'",
    )
    p.add_argument("--padding", choices=("same", "valid"), default="same", help="zero padding (default same)")
    p.add_argument("--grey", "--gray", dest="grey", action="store_true", help="convert images to greyscale first")
    p.add_argument(
        "--max-size",
        type=positive_int,
        default=512,
        metavar="PX",
        help="shrink larger images so their long side is PX pixels (default 512): the figure "
        "shows them small, and convolution memory grows with kernel size x pixels",
    )
    p.add_argument("--out", default="filtered.png", metavar="FILE", help="figure file to write (default filtered.png)")
    p.set_defaults(func=run)


def run(args):
    from ..plot import plot_convolution

    kernel = parse_kernel(args.kernel)  # a bad kernel is a usage error: check it before reading images
    writable_file(args.out)
    images = [_shrink(read_image(path, 1 if args.grey else None)[0], args.max_size, path) for path in args.images]
    title = args.kernel if len(args.kernel) <= 40 else "custom kernel"
    plot_convolution(images, kernel, title=f"{title} ({args.padding} padding)", save=args.out, padding=args.padding)
    print(f"wrote {Path(args.out).resolve()}")
    return 0


def _shrink(image, max_size, path):
    from PIL import Image

    h, w = image.shape[:2]
    if max(h, w) <= max_size:
        return image
    scale = max_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    note(f"{path}: shrunk from {w}x{h} to {size[0]}x{size[1]} (--max-size {max_size})")
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
