"""One annotated example: (seed, split, index) -> scene -> rendered image -> points in a layout, box, flags."""

from __future__ import annotations

import numpy as np

from awing.data.synthetic.geometry import to_layout
from awing.data.synthetic.render import render_scene
from awing.data.synthetic.scene import image_rng, sample_scene, scene_attributes


def detector_box(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(4,) float32 ``(x0, y0, x1, y1)`` pixels, a detector-like face box around ``landmarks`` (N, 2)
    pixels: the landmark box grown by 8% of its longer side left/right/bottom and 20% at the top (the
    forehead), each side then moved by N(0, 3%) of that side (drawn from ``rng``)."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    m = max(x1 - x0, y1 - y0)
    box = np.array([x0 - 0.08 * m, y0 - 0.2 * m, x1 + 0.08 * m, y1 + 0.08 * m])
    return (box + rng.normal(0, 0.03 * m, 4)).astype(np.float32)


def make_example(seed: int, split: str, index: int, size: int = 256, schema: str = "wflw98") -> tuple[np.ndarray, dict]:
    """Image ``index`` of ``split`` of the set seeded ``seed``, and its annotation.

    Args:
        size: image side S, pixels.
        schema: point layout, ``wflw98`` (N = 98) or ``w300_68`` (N = 68).
    Returns:
        ``(image, record)``: image (S, S, 3) uint8 BGR; record a dict with ``landmarks`` (N, 2) float32
        pixels, ``visible`` (N,) bool, ``box`` (4,) float32 pixels (:func:`detector_box`),
        ``attributes`` (WFLW's six 0/1 flags), ``head_pose`` (``yaw``, ``pitch``, ``roll`` degrees) and
        ``scene`` (the :class:`~.scene.Scene`).
    """
    rng = image_rng(seed, split, index)
    scene = sample_scene(rng, size)
    r = render_scene(scene)
    lm = to_layout(r.landmarks, schema)
    visible = to_layout(r.visible, schema)
    occluded = to_layout(r.occluded, schema)
    record = {
        "landmarks": lm,
        "visible": visible,
        "box": detector_box(lm, rng),
        "attributes": scene_attributes(scene, float(occluded.mean())),
        "head_pose": {"yaw": scene.yaw, "pitch": scene.pitch, "roll": scene.roll},
        "scene": scene,
    }
    return r.image, record
