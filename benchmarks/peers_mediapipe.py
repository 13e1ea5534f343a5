"""MediaPipe FaceMesh as a worker process for benchmarks/peers.py, run by the Python of its own virtualenv.

mediapipe 0.10.21 pins numpy < 2, so it cannot share awing's environment: ``benchmarks/peers.py`` makes a side
virtualenv (``pip install "mediapipe==0.10.21" "numpy<2"``) and starts this script there. It imports only
mediapipe, numpy and cv2 (``opencv-contrib-python``, which mediapipe itself depends on) and the standard
library: never awing.

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout (the protocol's only output:
the process's own stdout is moved to stderr before mediapipe is imported, so its logging cannot mix in).

    -> first line, unasked: {"ok": true, "ready": true, "mediapipe": "0.10.21", "numpy": ..., "cv2": ...}
    {"op": "image", "path": P}      -> {"ok": true, "ms": T, "faces": [F, ...], "width": W, "height": H}
    {"op": "video_open", "path": V} -> {"ok": true, "frames": N, "fps": R}
    {"op": "video_next"}            -> {"ok": true, "ms": T, "faces": [...], "index": I}, or {"ok": false, "end": true}
    {"op": "quit"}                  -> (exits)
    anything failing                -> {"ok": false, "error": "..."}

``F`` is a face: 478 ``[x, y]`` points (FaceMesh's 468 with ``refine_landmarks=True``'s 10 iris points), in
pixels with pixel centres at integers (awing's convention: ``x_normalised * width - 0.5``). ``T`` is the wall
time of ``FaceMesh.process`` alone in milliseconds (the image is read and converted to RGB before the clock
starts). Images use ``static_image_mode=True`` (detection on every image); a video uses its own FaceMesh
with ``static_image_mode=False`` (MediaPipe's tracking: the detector runs only when the face is lost).

    python benchmarks/peers_mediapipe.py [--max-faces 5] [--cpus 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _protocol_stream():
    """A private copy of stdout for the answers; fd 1 itself then points at stderr."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return out


def _faces(result, width: int, height: int) -> list:
    faces = []
    for face in result.multi_face_landmarks or []:
        faces.append([[round(p.x * width - 0.5, 3), round(p.y * height - 0.5, 3)] for p in face.landmark])
    return faces


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-faces", type=int, default=5, help="FaceMesh max_num_faces (default 5)")
    p.add_argument("--cpus", default="", help="comma-separated CPU ids to pin this process to (default: no pinning)")
    args = p.parse_args(argv)
    out = _protocol_stream()
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})

    import cv2
    import mediapipe as mp
    import numpy as np

    cv2.setNumThreads(1)
    face_mesh = mp.solutions.face_mesh
    still = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=args.max_faces, refine_landmarks=True)
    video = capture = None
    frame_index = 0

    def answer(obj: dict) -> None:
        out.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def run(mesh, bgr) -> dict:
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        h, w = rgb.shape[:2]
        t0 = time.perf_counter()
        result = mesh.process(rgb)
        ms = 1000 * (time.perf_counter() - t0)
        return {"ok": True, "ms": ms, "faces": _faces(result, w, h), "width": w, "height": h}

    answer({"ok": True, "ready": True, "mediapipe": mp.__version__, "numpy": np.__version__, "cv2": cv2.__version__})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            op = msg.get("op")
            if op == "quit":
                break
            if op == "image":
                bgr = cv2.imread(msg["path"], cv2.IMREAD_COLOR)
                if bgr is None:
                    raise ValueError(f"cannot read image {msg['path']}")
                answer(run(still, bgr))
            elif op == "video_open":
                if video is not None:
                    video.close()
                if capture is not None:
                    capture.release()
                capture = cv2.VideoCapture(msg["path"])
                if not capture.isOpened():
                    raise ValueError(f"cannot open video {msg['path']}")
                video = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=args.max_faces, refine_landmarks=True)
                frame_index = 0
                frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
                answer({"ok": True, "frames": frames, "fps": capture.get(cv2.CAP_PROP_FPS)})
            elif op == "video_next":
                if capture is None:
                    raise ValueError("video_next before video_open")
                ok, bgr = capture.read()
                if not ok:
                    answer({"ok": False, "end": True})
                    continue
                reply = run(video, bgr)
                reply["index"] = frame_index
                frame_index += 1
                answer(reply)
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as err:  # noqa: BLE001 - every failure goes back to the caller as one answer
            answer({"ok": False, "error": f"{type(err).__name__}: {err}"})
    still.close()
    if video is not None:
        video.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
