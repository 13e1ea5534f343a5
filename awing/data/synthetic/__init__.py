"""Procedural faces: the embedded default dataset, generated on the fly with no download.

A parametric 3-D face (contour, brows, eyelids, irises, nose, lips) is posed, projected and drawn with
OpenCV into a cluttered scene. Every landmark of the 98-point WFLW layout is a sample of one of the
face's part curves, and the part is drawn through exactly those curves, so each point sits on a visible
image edge unless something hides it. The 68-point 300W layout is the 98 one through
:data:`WFLW_TO_300W`.

Pipeline (one image), one module per stage, each importing only the ones above it:

1. :mod:`.geometry`: the 3-D face in face units (:class:`Identity`, :class:`Expression`,
   :func:`face_points`), its pose (:func:`rotation`) and perspective projection, and the point layouts
   (:data:`SCHEMAS`, :data:`WFLW_TO_300W`, :func:`to_layout`). Units and axes: that module's docstring.
2. :mod:`.scene`: :func:`image_rng` seeds image ``i`` of split ``s`` with ``(seed, s, i)``;
   :func:`sample_scene` draws every random decision of one image into a :class:`Scene` (plain data:
   person, expression, pose, colours, background, :class:`Occluder` objects, lighting, blur, noise);
   :func:`scene_attributes` reads WFLW's six flags (:data:`ATTRIBUTE_KEYS`) off it. Tests edit a scene
   with :func:`dataclasses.replace` (:func:`frontal`: a neutral, frontal, unoccluded face) and render it
   again.
3. :mod:`.render`: :func:`render_scene` turns a scene into pixels, points and visibility
   (:class:`Rendered`), deterministically.
4. :mod:`.example`: :func:`make_example` chains the three for ``(seed, split, index)`` and adds the
   layout, a detector-like box (:func:`detector_box`) and the flags.
5. :mod:`.files`: :func:`generate` writes a whole set (images, annotation JSON, ``meta.json``) for a
   :class:`GenerationOptions`, and skips the work when ``meta.json`` already matches.

Any image can be regenerated alone, in any order or process: the same ``(seed, split, index)`` and
size give the same pixels and points. :mod:`awing.data.readers.synthetic` reads a set back
(``format: synthetic``).
"""

from __future__ import annotations

from awing.data.synthetic.example import detector_box, make_example
from awing.data.synthetic.files import GENERATOR_VERSION, GenerationOptions, generate
from awing.data.synthetic.geometry import SCHEMAS, WFLW_TO_300W, Expression, Identity, face_points, rotation, to_layout
from awing.data.synthetic.render import Rendered, render_scene
from awing.data.synthetic.scene import (
    ATTRIBUTE_KEYS,
    SPLITS,
    Occluder,
    Scene,
    frontal,
    image_rng,
    sample_scene,
    scene_attributes,
)

__all__ = [
    "GENERATOR_VERSION",
    "SPLITS",
    "SCHEMAS",
    "WFLW_TO_300W",
    "ATTRIBUTE_KEYS",
    "GenerationOptions",
    "Identity",
    "Expression",
    "Occluder",
    "Scene",
    "Rendered",
    "sample_scene",
    "frontal",
    "scene_attributes",
    "face_points",
    "rotation",
    "render_scene",
    "image_rng",
    "to_layout",
    "detector_box",
    "make_example",
    "generate",
]
