"""RKNN-Toolkit2's MobileNet example (`examples/onnx/mobilenet`-style `test.py`, with its
`--eval_perf` / `--accuracy_analysis` switches) with only the import changed:

    python compiler/examples/rknn_api/mobilenet_classification.py   # the zoo's MobileNetV2
    python compiler/examples/rknn_api/mobilenet_classification.py \
        --model compiler/examples/tiny_cnn.onnx --dataset compiler/examples/tiny_cnn_dataset.txt \
        --image compiler/examples/tiny_cnn_input.npy --size 32

config (mean/std) -> load_onnx -> build(dataset) -> export_rknn -> init_runtime -> inference
(top-5) -> eval_perf / eval_memory -> accuracy_analysis -> release. Exits with the failing
call's return code, as the RKNN script does.
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


def show_outputs(outputs):
    output = outputs[0].reshape(-1)
    output_sorted = sorted(output, reverse=True)
    top5_str = "mobilenet\n-----TOP 5-----\n"
    for i in range(min(5, output.size)):
        value = output_sorted[i]
        index = np.where(output == value)
        top5_str += f"[{index[0][0]}] score:{value:.6f}\n"
    print(top5_str)


def read_input(path, size):
    """The image as the RKNN example reads it (RGB, HWC, resized, batch of 1), or a .npy
    array in the model's own layout."""
    if path.endswith(".npy"):
        return np.load(path), "nchw"
    img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.expand_dims(np.asarray(img), 0), "nhwc"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ZOO / "models" / "mobilenetv2_224_op13.onnx"))
    parser.add_argument("--dataset", default=str(ZOO / "images" / "dataset.txt"))
    parser.add_argument("--image", default=str(ZOO / "images" / "coffee.png"))
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--target", default="rk3588", help="target platform")
    parser.add_argument(
        "--device", action="store_true", help="run on the NPU (init_runtime target)"
    )
    parser.add_argument("--eval_perf", action="store_true")
    parser.add_argument("--eval_mem", action="store_true")
    parser.add_argument("--accuracy_analysis", action="store_true")
    parser.add_argument("--output_dir", default=".", help="where the .rknn and snapshot go")
    args = parser.parse_args()
    rknn_model = os.path.join(args.output_dir, "mobilenet.rknn")

    # Create RKNN object
    rknn = RKNN(verbose=False)

    # Pre-process config
    print("--> Config model")
    rknn.config(
        mean_values=[[123.675, 116.28, 103.53]],
        std_values=[[58.395, 57.12, 57.375]],
        target_platform=args.target,
    )
    print("done")

    # Load model
    print("--> Loading model")
    ret = rknn.load_onnx(model=args.model)
    if ret != 0:
        print("Load model failed!")
        sys.exit(ret)
    print("done")

    # Build model
    print("--> Building model")
    ret = rknn.build(do_quantization=True, dataset=args.dataset)
    if ret != 0:
        print("Build model failed!")
        sys.exit(ret)
    print("done")

    # Export rknn model
    print("--> Export rknn model")
    ret = rknn.export_rknn(rknn_model)
    if ret != 0:
        print("Export rknn model failed!")
        sys.exit(ret)
    print("done")

    # Set inputs
    img, data_format = read_input(args.image, args.size)

    # Init runtime environment
    print("--> Init runtime environment")
    ret = rknn.init_runtime(
        target=args.target if args.device else None,
        perf_debug=args.eval_perf,
        eval_mem=args.eval_mem,
    )
    if ret != 0:
        print("Init runtime environment failed!")
        sys.exit(ret)
    print("done")

    # Inference
    print("--> Running model")
    outputs = rknn.inference(inputs=[img], data_format=[data_format])
    if outputs is None:
        print("Inference failed!")
        sys.exit(-1)
    np.save(os.path.join(args.output_dir, "output0.npy"), outputs[0])
    show_outputs(outputs)
    print("done")

    if args.eval_perf:
        print("--> Evaluate model performance")
        if rknn.eval_perf() is None:
            sys.exit(-1)
        print("done")

    if args.eval_mem:
        print("--> Evaluate model memory")
        if rknn.eval_memory() is None:
            sys.exit(-1)
        print("done")

    if args.accuracy_analysis:
        print("--> Accuracy analysis")
        ret = rknn.accuracy_analysis(
            inputs=[args.image], output_dir=os.path.join(args.output_dir, "snapshot")
        )
        if ret != 0:
            print("Accuracy analysis failed!")
            sys.exit(ret)
        print("done")

    rknn.release()


if __name__ == "__main__":
    main()
