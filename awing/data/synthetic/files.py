"""The dataset folder: the generation options, writing a whole set to disk, and its ``meta.json``.

Layout under ``root``:

- ``images/{split}/{i:05d}.jpg`` (JPEG quality 95) or ``.png`` (compression 3), S x S BGR;
- ``annotations_{split}.json``: a list of ``{image, landmarks, visible, box, attributes, head_pose}``
  records; ``image`` is relative to ``root``, points and boxes are pixels rounded to 1/1000, head pose
  degrees;
- ``meta.json``: the :class:`GenerationOptions` that made the set and :data:`GENERATOR_VERSION`,
  written last; it is the cache key (:func:`generate` does nothing when it matches).

:mod:`awing.data.readers.synthetic` reads the folder back.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import cv2
import numpy as np

from awing.data.synthetic.example import make_example
from awing.data.synthetic.geometry import SCHEMAS

GENERATOR_VERSION = 1  # bump when the same options stop giving the same files
IMAGE_FORMATS = ("jpg", "png")


@dataclasses.dataclass(frozen=True)
class GenerationOptions:
    """What a synthetic set is made from; the one declaration of these options.

    The reader (``format: synthetic``, ``data.options`` in a config) and :func:`generate` take the
    same names as keywords; an unknown name raises a TypeError naming it (:meth:`updated`).

    Attributes:
        schema: point layout, ``wflw98`` (98 points) or ``w300_68`` (68 points).
        n_train, n_val, n_test: images per split.
        size: image side, pixels (images are square).
        seed: the set's seed; image ``i`` of split ``s`` is drawn from ``(seed, s, i)`` alone.
        image_format: ``jpg`` or ``png``.
    """

    schema: str = "wflw98"
    n_train: int = 2000
    n_val: int = 200
    n_test: int = 200
    size: int = 256
    seed: int = 0
    image_format: str = "jpg"

    def __post_init__(self) -> None:
        if self.schema not in SCHEMAS:
            raise ValueError(f"the synthetic faces come in {', '.join(SCHEMAS)}, not {self.schema!r}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be jpg or png, not {self.image_format!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def updated(self, **options) -> GenerationOptions:
        """A copy with ``options`` replaced.

        Raises:
            TypeError: a name that is not an option (the message names it and lists the options).
            ValueError: an unknown schema or image format.
        """
        unknown = [name for name in options if name not in self.names()]
        if unknown:
            raise TypeError(
                f"unknown synthetic-face option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; the options are {', '.join(self.names())}"
            )
        return dataclasses.replace(self, **options)

    @property
    def counts(self) -> dict[str, int]:
        """Images per split, ``{"train": n, "val": n, "test": n}``."""
        return {"train": int(self.n_train), "val": int(self.n_val), "test": int(self.n_test)}

    def meta(self) -> dict:
        """The ``meta.json`` contents of the set these options make."""
        return {
            "generator": "awing.data.synthetic",
            "version": GENERATOR_VERSION,
            "schema": self.schema,
            "counts": self.counts,
            "size": int(self.size),
            "seed": int(self.seed),
            "image_format": self.image_format,
        }


def generate(root: str | Path, options: GenerationOptions | None = None, *, progress: bool = True, **fields) -> Path:
    """Write a synthetic dataset under ``root`` (idempotent).

    Args:
        root: the dataset folder (created; layout in the module docstring).
        options: the set's options; ``None`` for the defaults of :class:`GenerationOptions`.
        progress: show a progress bar.
        **fields: options by name (``schema``, ``n_train``, ``n_val``, ``n_test``, ``size``, ``seed``,
            ``image_format``), replacing those of ``options``.

    If ``meta.json`` already records these options nothing is done; otherwise the set is (re)written
    (the old images are removed first). Files are written atomically, so concurrent calls (several
    ranks on a fresh machine) are safe: they write identical bytes.

    Returns:
        ``root`` as a Path.
    Raises:
        TypeError: an unknown option name, or ``options`` not a :class:`GenerationOptions`.
        ValueError: an unknown schema or image format.
    """
    from tqdm import tqdm

    if options is not None and not isinstance(options, GenerationOptions):
        raise TypeError(f"options must be a GenerationOptions (or pass them by name), not {options!r}")
    opts = (options or GenerationOptions()).updated(**fields)
    root = Path(root).expanduser()
    counts, size, schema, image_format = opts.counts, opts.size, opts.schema, opts.image_format
    meta = opts.meta()
    meta_path = root / "meta.json"
    if meta_path.is_file():
        try:
            if json.loads(meta_path.read_text()) == meta:
                return root
        except json.JSONDecodeError:
            pass
        meta_path.unlink(missing_ok=True)
        for old in (root / "images").glob("*/[0-9][0-9][0-9][0-9][0-9].*"):  # the previous set's images
            old.unlink(missing_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    bars = None if progress else True  # None: no bars when stderr is not a terminal
    bar = tqdm(total=sum(counts.values()), desc=f"synthetic faces -> {root}", unit="img", disable=bars)
    for split, count in counts.items():
        folder = root / "images" / split
        folder.mkdir(parents=True, exist_ok=True)
        records = []
        for i in range(count):
            image, rec = make_example(opts.seed, split, i, size, schema)
            rel = f"images/{split}/{i:05d}.{image_format}"
            ok, buf = cv2.imencode(f".{image_format}", image, params)
            if not ok:
                raise OSError(f"could not encode {rel}")
            _write_atomic(root / rel, buf.tobytes())
            records.append(
                {
                    "image": rel,
                    "landmarks": np.round(rec["landmarks"].astype(np.float64), 3).tolist(),
                    "visible": [bool(v) for v in rec["visible"]],
                    "box": np.round(rec["box"].astype(np.float64), 3).tolist(),
                    "attributes": rec["attributes"],
                    "head_pose": {k: round(v, 3) for k, v in rec["head_pose"].items()},
                }
            )
            bar.update(1)
        _write_atomic(root / f"annotations_{split}.json", json.dumps(records).encode())
    bar.close()
    _write_atomic(meta_path, json.dumps(meta, indent=1).encode())
    return root


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so that a concurrent reader (another rank generating the
    same deterministic set) never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
