"""Regenerate awing's ONNX copies of the shipped MediaPipe BlazeFace models (a maintainer tool).

    pip install tflite2onnx==0.4.1          # pure python (tflite, onnx, numpy); no TensorFlow
    python tools/convert_blazeface.py [--models-dir awing/detect/models] [--check]

For each of ``face_detection_short_range.tflite`` and ``face_detection_back.tflite`` in the models folder it
runs ``tflite2onnx.convert(IN.tflite, OUT.onnx)`` (what ``tflite2onnx IN.tflite OUT.onnx`` does), then
sorts the ONNX graph's initializers and value_info entries by name: tflite2onnx writes them in set
order, which changes with Python's hash seed, so without this two runs give different (equivalent)
bytes. Nothing else is changed. tflite2onnx warns "Data type float16 not supported/tested yet" for the
models' float16 weights (silenced here): it folds each ``DEQUANTIZE`` (float16 -> float32) into a
float32 initializer, which is exact (checked below).

Then it checks, and fails otherwise, that the ONNX weights are the TFLite ones: the float32 initializers
hold exactly the float16 tensors' values widened to float32 (as multisets, per model: the layout of a
tensor may be transposed), and the graph has one input ``input`` (1, 3, S, S) and the outputs
``regressors`` (1, 896, 16) and ``classificators`` (1, 896, 1). With ``--check`` (needs onnxruntime and
OpenCV >= 4.8 in the same environment) it also runs both files on random inputs and prints the largest
output difference between onnxruntime on the ONNX file and ``cv2.dnn`` on the TFLite one.

Prints each written file's size and sha256 (the figures of ``awing/detect/models/NOTICE``).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

import numpy as np

MODELS = {"face_detection_short_range": 128, "face_detection_back": 256}
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "awing" / "detect" / "models"


def convert(tflite_path: Path, onnx_path: Path) -> None:
    """``tflite2onnx`` on one file, then the initializers sorted by name (deterministic bytes)."""
    import onnx
    import tflite2onnx

    onnx_path.unlink(missing_ok=True)  # (tflite2onnx warns when it overwrites)
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)  # its float16 warning, once per tensor
    tflite2onnx.convert(str(tflite_path), str(onnx_path))
    model = onnx.load(str(onnx_path))
    for field in (model.graph.initializer, model.graph.value_info):
        items = sorted(field, key=lambda t: t.name)
        del field[:]
        field.extend(items)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def check_weights(tflite_path: Path, onnx_path: Path, size: int) -> None:
    """The ONNX file's float32 weights are the TFLite file's float16 ones, widened; its inputs and outputs
    are the layout awing reads. Raises SystemExit otherwise."""
    import onnx
    import tflite
    from onnx import numpy_helper

    m = tflite.Model.GetRootAsModel(tflite_path.read_bytes(), 0)
    g = m.Subgraphs(0)
    ours = []
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        buf = m.Buffers(t.Buffer())
        if buf.DataLength() and t.Type() == tflite.TensorType.FLOAT16:
            ours.append(np.frombuffer(buf.DataAsNumpy().tobytes(), np.float16).astype(np.float32))
    model = onnx.load(str(onnx_path))
    theirs = [
        numpy_helper.to_array(t).reshape(-1) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT
    ]
    same = sorted(map(len, ours)) == sorted(map(len, theirs)) and np.array_equal(
        np.sort(np.concatenate(ours)), np.sort(np.concatenate(theirs))
    )
    if not same:
        sys.exit(f"{onnx_path.name}: its float32 weights are not {tflite_path.name}'s float16 weights")

    def dims(values):
        return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    want_in, want_out = {"input": [1, 3, size, size]}, {"regressors": [1, 896, 16], "classificators": [1, 896, 1]}
    if dims(model.graph.input) != want_in or dims(model.graph.output) != want_out:
        sys.exit(f"{onnx_path.name}: inputs {dims(model.graph.input)}, outputs {dims(model.graph.output)}")
    print(f"  weights: {len(ours)} float16 tensors ({sum(map(len, ours))} values) = the float32 initializers")


def check_outputs(tflite_path: Path, onnx_path: Path, size: int, runs: int = 5) -> None:
    """onnxruntime on the ONNX file against cv2.dnn on the TFLite file, on random [-1, 1] inputs."""
    import cv2
    import onnxruntime as ort

    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    net = cv2.dnn.readNetFromTFLite(str(tflite_path), *(() if engine is None else (engine,)))
    names = list(net.getUnconnectedOutLayersNames())
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = {}
    for _ in range(runs):
        x = rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        net.setInput(x)
        ref = dict(zip(names, net.forward(names)))
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x})))
        for k in got:
            diff = float(np.abs(got[k].reshape(-1) - ref[k].reshape(-1)).max())
            worst[k] = max(worst.get(k, 0.0), diff)
    print("  onnxruntime vs cv2.dnn, largest |difference|: " + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models-dir", type=Path, default=DEFAULT_DIR, help="folder of the .tflite files (and output)")
    p.add_argument("--check", action="store_true", help="also compare onnxruntime with cv2.dnn on random inputs")
    args = p.parse_args(argv)
    try:
        import tflite2onnx
    except ImportError:
        sys.exit("this tool needs tflite2onnx: pip install tflite2onnx==0.4.1")
    print(f"tflite2onnx {tflite2onnx.__version__}")
    for name, size in MODELS.items():
        src, dst = args.models_dir / f"{name}.tflite", args.models_dir / f"{name}.onnx"
        convert(src, dst)
        data = dst.read_bytes()
        print(f"{dst}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
        check_weights(src, dst, size)
        if args.check:
            check_outputs(src, dst, size)


if __name__ == "__main__":
    main()
