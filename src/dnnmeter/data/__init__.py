"""Data sets for evaluation and training, and their preprocessing.

Layouts read from a folder (``detect`` picks one): ImageNet validation as class folders,
flat with Kaggle's ``LOC_val_solution.csv`` or with the devkit's ground truth, Tiny
ImageNet, any ImageFolder; and the built-in ``digits`` (scikit-learn's handwritten digits).
Every one yields ``(image tensor, class index)`` with ``classes`` in the standard order.

Not run as a test (it needs ImageNet on disk):

>>> from dnnmeter.data import detect, open_data, eval_transform
>>> detect("/data/imagenet/val")  # doctest: +SKIP
'imagenet-folders'
>>> data = open_data("/data/imagenet/val", eval_transform(224), 224)  # doctest: +SKIP
>>> image, label = data[0]; data.classes[label]  # doctest: +SKIP
"""

from __future__ import annotations

from dnnmeter.data.detect import DIGITS, LAYOUTS, Layout, detect, open_data
from dnnmeter.data.digits import DigitsDataset, digits, digits_split
from dnnmeter.data.files import LabelledImages, UnreadableImageError
from dnnmeter.data.skipping import Batch, Skipped, SkipUnreadable, collate_skipping
from dnnmeter.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, resize_size

__all__ = [
    "DIGITS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYOUTS",
    "Batch",
    "DigitsDataset",
    "LabelledImages",
    "Layout",
    "SkipUnreadable",
    "Skipped",
    "UnreadableImageError",
    "collate_skipping",
    "detect",
    "digits",
    "digits_split",
    "eval_transform",
    "open_data",
    "resize_size",
]
