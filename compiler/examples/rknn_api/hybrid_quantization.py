"""RKNN-Toolkit2's hybrid quantization example (`examples/functions/hybrid_quant`:
step1.py, then step2.py after editing the cfg) with only the import changed, both steps in
one script:

    python compiler/examples/rknn_api/hybrid_quantization.py --proposal   # the zoo's MobileNetV2
    python compiler/examples/rknn_api/hybrid_quantization.py \\
        --model compiler/examples/tiny_cnn.onnx --dataset compiler/examples/tiny_cnn_dataset.txt \\
        --image compiler/examples/tiny_cnn_input.npy --size 32

Step 1 writes `<model>.model`, `<model>.data` and `<model>.quantization.cfg` in the current
directory (`--output_dir`); with `--proposal` the cfg already lists the layers to compute in
a wider dtype (RKNN's proposal), otherwise edit `custom_quantize_layers` between the steps
(`--float16 TENSOR` does it here). Step 2 builds from the three files, exports and runs.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from compiler.api import RKNN  # was: from rknn.api import RKNN

ZOO = Path(
    os.environ.get("RKNPU_ZOO", Path(__file__).resolve().parents[3].parent / "shared" / "zoo")
)


def read_input(path, size):
    if path.endswith(".npy"):
        return np.load(path), "nchw"
    img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.expand_dims(np.asarray(img), 0), "nhwc"


def step1(args):
    rknn = RKNN(verbose=False)
    rknn.config(
        mean_values=[[123.675, 116.28, 103.53]],
        std_values=[[58.395, 57.12, 57.375]],
        target_platform="rk3588",
    )
    ret = rknn.load_onnx(model=args.model)
    if ret != 0:
        print("Load model failed!")
        sys.exit(ret)
    ret = rknn.hybrid_quantization_step1(dataset=args.dataset, proposal=args.proposal)
    if ret != 0:
        print("hybrid_quantization_step1 failed!")
        sys.exit(ret)
    rknn.release()


def edit_cfg(cfg, tensors):
    """What the user does by hand between the steps: tensors to compute in float16."""
    text = Path(cfg).read_text()
    lines = "".join(f"    {name}: float16\n" for name in tensors)
    text = text.replace("custom_quantize_layers: {}\n", "custom_quantize_layers:\n")
    text = text.replace("custom_quantize_layers:\n", "custom_quantize_layers:\n" + lines, 1)
    Path(cfg).write_text(text)


def step2(args, name):
    rknn = RKNN(verbose=False)
    ret = rknn.hybrid_quantization_step2(
        model_input=f"./{name}.model",
        data_input=f"./{name}.data",
        model_quantization_cfg=f"./{name}.quantization.cfg",
    )
    if ret != 0:
        print("hybrid_quantization_step2 failed!")
        sys.exit(ret)
    ret = rknn.export_rknn(f"./{name}.rknn")
    if ret != 0:
        print("Export rknn model failed!")
        sys.exit(ret)
    ret = rknn.init_runtime()
    if ret != 0:
        print("Init runtime environment failed!")
        sys.exit(ret)
    img, data_format = read_input(args.image, args.size)
    outputs = rknn.inference(inputs=[img], data_format=[data_format])
    if outputs is None:
        print("Inference failed!")
        sys.exit(-1)
    np.save("output0.npy", outputs[0])
    print("top-5:", np.argsort(-outputs[0].reshape(-1))[:5])
    rknn.release()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ZOO / "models" / "mobilenetv2_224_op13.onnx"))
    parser.add_argument("--dataset", default=str(ZOO / "images" / "dataset.txt"))
    parser.add_argument("--image", default=str(ZOO / "images" / "coffee.png"))
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--proposal", action="store_true", help="let step 1 propose the layers")
    parser.add_argument(
        "--float16",
        action="append",
        default=[],
        metavar="TENSOR",
        help="a tensor to compute in float16 (the cfg edit between the steps)",
    )
    parser.add_argument("--output_dir", default=".", help="where step 1's files go")
    args = parser.parse_args()
    args.model, args.dataset, args.image = (
        os.path.abspath(p) for p in (args.model, args.dataset, args.image)
    )
    os.makedirs(args.output_dir, exist_ok=True)
    os.chdir(args.output_dir)  # step 1 writes its files in the current directory, as RKNN's
    name = Path(args.model).stem
    step1(args)
    if args.float16:
        edit_cfg(f"./{name}.quantization.cfg", args.float16)
    step2(args, name)


if __name__ == "__main__":
    main()
