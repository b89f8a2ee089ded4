"""RKNN-Toolkit2's YOLO example (`examples/onnx/yolov5`-style `test.py`: build, run on an
image, decode the boxes, non-maximum suppression) on the zoo's YOLOv8n-like model, with
only the import changed:

    python compiler/examples/rknn_api/yolo_detection.py [--model M.onnx] [--image I.png]

The model's output is YOLOv8's 1 x (4 + classes) x anchors: per anchor the box centre,
width and height in input pixels, then one score per class (the DFL and the box decode are
in the graph). The decode keeps anchors whose best score passes OBJ_THRESH and runs
per-class NMS at NMS_THRESH, as the RKNN model zoo's yolov8 post-processing does. The zoo
model has random weights: its boxes mean nothing, the pipeline is what is shown.
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
OBJ_THRESH = 0.25
NMS_THRESH = 0.45


def decode(output, threshold=OBJ_THRESH):
    """(boxes x1, y1, x2, y2; scores; classes) of the anchors whose best score passes."""
    prediction = output.reshape(output.shape[-2], output.shape[-1]).T  # anchors x (4 + C)
    scores = prediction[:, 4:]
    classes = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), classes]
    keep = best >= threshold
    cx, cy, w, h = prediction[keep, :4].T
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, best[keep], classes[keep]


def nms(boxes, scores, threshold=NMS_THRESH):
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = scores.argsort()[::-1]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = []
    while order.size:
        i, rest = order[0], order[1:]
        kept.append(int(i))
        x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= threshold]
    return kept


def post_process(output):
    boxes, scores, classes = decode(output)
    kept = []
    for c in np.unique(classes):
        index = np.flatnonzero(classes == c)
        kept += [int(index[k]) for k in nms(boxes[index], scores[index])]
    kept.sort(key=lambda k: -scores[k])
    return boxes[kept], scores[kept], classes[kept]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ZOO / "models" / "yolov8n_like_320_op13.onnx"))
    parser.add_argument("--dataset", default=str(ZOO / "images" / "dataset.txt"))
    parser.add_argument("--image", default=str(ZOO / "images" / "motorcycle_left.png"))
    parser.add_argument("--size", type=int, default=320, help="input height and width")
    parser.add_argument("--target", default="rk3588")
    args = parser.parse_args()

    rknn = RKNN(verbose=False)
    print("--> Config model")
    rknn.config(mean_values=[[0, 0, 0]], std_values=[[255, 255, 255]],
                target_platform=args.target)  # fmt: skip
    print("--> Loading model")
    if rknn.load_onnx(model=args.model) != 0:
        print("Load model failed!")
        sys.exit(-1)
    print("--> Building model")
    if rknn.build(do_quantization=True, dataset=args.dataset) != 0:
        print("Build model failed!")
        sys.exit(-1)
    print("--> Init runtime environment")
    if rknn.init_runtime() != 0:
        print("Init runtime environment failed!")
        sys.exit(-1)
    image = Image.open(args.image).convert("RGB").resize((args.size, args.size))
    outputs = rknn.inference(inputs=[np.expand_dims(np.asarray(image), 0)])
    if outputs is None:
        print("Inference failed!")
        sys.exit(-1)
    boxes, scores, classes = post_process(outputs[0])
    print(f"{len(boxes)} boxes after NMS (score >= {OBJ_THRESH}, IoU {NMS_THRESH})")
    for box, score, cls in list(zip(boxes, scores, classes, strict=True))[:10]:
        x1, y1, x2, y2 = (int(v) for v in box)
        print(f"class {cls} score {score:.3f} box ({x1}, {y1}) - ({x2}, {y2})")
    rknn.release()


if __name__ == "__main__":
    main()
