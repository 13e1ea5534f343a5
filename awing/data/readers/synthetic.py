"""Reader for the embedded synthetic faces (:mod:`awing.data.synthetic`); generates them on first use.

Files under ``root`` (written by :func:`awing.data.synthetic.generate`):

- ``meta.json``: schema, counts per split, image size, seed, image format, generator version;
- ``annotations_{split}.json``: a list of records ``{image, landmarks, visible, box, attributes,
  head_pose}``; ``image`` is relative to ``root``, points are ``(x, y)`` pixels;
- ``images/{split}/{i:05d}.jpg`` (or ``.png``).

Boxes are detector-like, not tight: the landmark box grown by 8% of its longer side on the left, right
and bottom and by 20% at the top (where a detector includes the forehead), then each side moved by
Gaussian jitter with a standard deviation of 3% of that side (see
:func:`awing.data.synthetic.detector_box`). Attributes are WFLW's six 0/1 flags (``pose``,
``expression``, ``illumination``, ``make-up``, ``occlusion``, ``blur``).

Sets are generated in ``wflw98`` by default; with ``schema="w300_68"`` in the 300W 68-point layout
instead, and ``meta.json`` records which. Read with no options, an existing set is read as it is (so
``awing eval MODEL synthetic:ROOT:SPLIT`` never regenerates someone's set); the registry's schema is
empty because it depends on the set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.sample import AnnotationError, Sample, check_image_exists
from awing.data.synthetic import ATTRIBUTE_KEYS, SPLITS, GenerationOptions
from awing.data.synthetic import generate as generate_set
from awing.schemas import load_schema


# The schema depends on the set (wflw98 or w300_68): "" makes callers take it from the point count.
@register_reader("synthetic", schema="", splits=SPLITS, creates_root=True)
def read(
    root: str | Path,
    split: str,
    schema: str | None = None,
    generate: bool = True,
    progress: bool = True,
    **options,
) -> list[Sample]:
    """Procedurally generated faces (no download): written under ``root`` on first use.

    Args:
        root: dataset folder; created and filled if ``generate`` and its ``meta.json`` does not match.
        split: ``train``, ``val`` or ``test``.
        schema: ``wflw98`` (98 points) or ``w300_68`` (68 points): the layout generated, and the one
            the set read must follow. None: the set already under ``root`` as it is (when no other
            option asks for something else), else ``wflw98``. A parameter of its own (not only in
            ``options``) because it matters when reading too, and because config code passes
            ``data.schema`` to readers whose signature names ``schema``.
        generate: make (or remake) the set when ``meta.json`` does not record these options;
            if False, read whatever set is there (its schema must still be ``schema``).
        progress: show a progress bar while generating.
        **options: the other generation options, passed on to :func:`awing.data.synthetic.generate`:
            the fields of :class:`awing.data.synthetic.GenerationOptions` (``n_train``, ``n_val``,
            ``n_test``, ``size``, ``seed``, ``image_format``); checked, but unused, when ``generate``
            is False.
    Returns:
        One :class:`Sample` per image, in index order, with ``visible``, ``box`` and ``attributes``.
    Raises:
        TypeError: an unknown option (named in the message).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for 'synthetic'; known: {', '.join(SPLITS)}")
    root = Path(root).expanduser()
    meta_path = root / "meta.json"
    if schema is None and not options and meta_path.is_file():  # nothing asks for another set: read this one
        schema, generate = json.loads(meta_path.read_text()).get("schema"), False
    schema = schema or GenerationOptions.schema
    opts = GenerationOptions().updated(schema=schema, **options)
    if generate:
        generate_set(root, opts, progress=progress)
    if not meta_path.is_file():
        raise FileNotFoundError(f"no synthetic set at {root} (no meta.json); read it with generate=True")
    meta = json.loads(meta_path.read_text())
    if meta.get("schema") != schema:
        raise AnnotationError(f"{meta_path}: the set follows {meta.get('schema')!r}, not the requested {schema!r}")
    ann_path = root / f"annotations_{split}.json"
    records = json.loads(ann_path.read_text())
    n_points = load_schema(schema).num_points
    samples = []
    for k, rec in enumerate(records):
        source = f"{ann_path}[{k}]"
        try:
            landmarks = np.asarray(rec["landmarks"], dtype=np.float32)
            visible = np.asarray(rec["visible"], dtype=bool)
            box = np.asarray(rec["box"], dtype=np.float32)
            attributes = {key: int(rec["attributes"][key]) for key in ATTRIBUTE_KEYS}
            image = rec["image"]
        except (KeyError, TypeError, ValueError) as err:
            raise AnnotationError(f"{source}: malformed record ({err})") from err
        if landmarks.shape != (n_points, 2) or visible.shape != (n_points,) or box.shape != (4,):
            raise AnnotationError(
                f"{source}: expected {n_points} points, visibility flags and a 4-number box; "
                f"got shapes {landmarks.shape}, {visible.shape}, {box.shape}"
            )
        samples.append(
            Sample(
                image=check_image_exists(root / image, source),
                landmarks=landmarks,
                visible=visible,
                box=box,
                attributes=attributes,
                split=split,
                source=source,
            )
        )
    return samples
