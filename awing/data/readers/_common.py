"""Parsing helpers shared by the readers: numbers, point layouts, boxes, files, splits, MATLAB files.

Every helper that can fail on bad data raises :class:`~awing.data.sample.AnnotationError` with a
``where`` string naming the file and line (``path:line``) or record (``path[row i]``), so that each
reader's error messages point at the annotation at fault. Line and row numbers are 1-based.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from awing.data.sample import AnnotationError, check_image_exists

#: Image file extensions tried, in this order, when an annotation names only a file stem.
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".JPG", ".PNG", ".JPEG")


# --------------------------------------------------------------------------------------------- where


def at_line(path: Path | str, line: int) -> str:
    """``path:line``, the source of a text annotation."""
    return f"{path}:{line}"


def at_row(path: Path | str, row: int) -> str:
    """``path[row i]``, the source of a record of a binary file (``row`` 1-based)."""
    return f"{path}[row {row}]"


# ------------------------------------------------------------------------------------------- numbers


def parse_floats(
    tokens: Sequence[str],
    where: str,
    count: int | None = None,
    what: str = "values",
    missing_ok: bool = False,
) -> np.ndarray:
    """(len(tokens),) float64 from text fields.

    Args:
        tokens: the fields.
        where: ``path:line`` for error messages.
        count: the number of fields expected, if fixed.
        what: what the fields are, for error messages.
        missing_ok: an empty field or ``nan`` means "not annotated" (NaN); otherwise both are errors.
    Raises:
        AnnotationError: wrong count, a non-numeric or infinite field, or a missing one not allowed.
    """
    if count is not None and len(tokens) != count:
        raise AnnotationError(f"{where}: expected {count} {what}, found {len(tokens)}")
    values = np.empty(len(tokens), dtype=np.float64)
    for i, token in enumerate(tokens):
        text = token.strip()
        if missing_ok and text.lower() in ("", "nan"):
            values[i] = math.nan
            continue
        try:
            value = float(text)
        except ValueError:
            raise AnnotationError(f"{where}: field {i + 1} of the {what} is not a number: {token!r}") from None
        if not math.isfinite(value):
            raise AnnotationError(f"{where}: field {i + 1} of the {what} is not a finite number: {token!r}")
        values[i] = value
    return values


def parse_int(token: str, where: str, what: str) -> int:
    """An integer field, or an AnnotationError naming ``what``."""
    try:
        return int(token.strip())
    except ValueError:
        raise AnnotationError(f"{where}: {what} is not an integer: {token!r}") from None


def parse_flags(tokens: Sequence[str], where: str, names: Sequence[str]) -> dict[str, int]:
    """0/1 fields by name (e.g. WFLW's attribute columns)."""
    flags = {}
    for name, token in zip(names, tokens, strict=True):
        value = parse_int(token, where, f"flag {name!r}")
        if value not in (0, 1):
            raise AnnotationError(f"{where}: flag {name!r} must be 0 or 1, found {token!r}")
        flags[name] = value
    return flags


# ------------------------------------------------------------------------------------ points, boxes


def xy_columns(n: int) -> list[str]:
    """``["x0", "y0", ..., "x{n-1}", "y{n-1}"]``, the coordinate columns of awing's CSV layouts."""
    return [f"{axis}{i}" for i in range(n) for axis in "xy"]


def row_points(row: dict[str, str], n: int, where: str, missing_ok: bool = False) -> np.ndarray:
    """(n, 2) from the ``x0, y0, ..., x{n-1}, y{n-1}`` columns of a CSV row."""
    values = parse_floats([row[c] for c in xy_columns(n)], where, what="coordinates", missing_ok=missing_ok)
    return points_interleaved(values)


def points_interleaved(values: np.ndarray) -> np.ndarray:
    """(N, 2) from ``x0, y0, x1, y1, ...``."""
    return np.asarray(values, dtype=np.float64).reshape(-1, 2)


def points_planar(values: np.ndarray) -> np.ndarray:
    """(N, 2) from ``x0, x1, ..., y0, y1, ...`` (all x first, then all y)."""
    return np.asarray(values, dtype=np.float64).reshape(2, -1).T.copy()


def xywh_to_xyxy(box: Sequence[float]) -> np.ndarray:
    """(4,) ``x0, y0, x1, y1`` from ``x, y, width, height``."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x, y, x + w, y + h])


def check_box(box: np.ndarray, where: str) -> np.ndarray:
    """The box, if finite with ``x1 >= x0`` and ``y1 >= y0``; an AnnotationError otherwise."""
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] < box[0] or box[3] < box[1]:
        raise AnnotationError(f"{where}: invalid face box {box.tolist()} (want finite x0, y0, x1, y1, x1>=x0, y1>=y0)")
    return box


# --------------------------------------------------------------------------------------------- files


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a FileNotFoundError saying what was expected there."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def first_existing(candidates: Iterable[Path], what: str, kind: str = "file") -> Path:
    """The first candidate that exists (as a file, or a folder when ``kind="dir"``)."""
    candidates = list(candidates)
    for path in candidates:
        if path.is_file() if kind == "file" else path.is_dir():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"{what} not found; looked for: {tried}")


def find_image_dir(root: Path, option: str | Path | None, default: Sequence[str] = ("images",)) -> Path:
    """The image folder: the ``image_dir`` option (relative to ``root``), else the first of
    ``root/<default>`` that exists, else ``root``."""
    if option is not None:
        return root / option
    for name in default:
        if (root / name).is_dir():
            return root / name
    return root


def image_path(folder: Path, relative: str, where: str, check: bool = True) -> str:
    """``folder/relative`` as a string; with ``check``, an AnnotationError if it is not a file."""
    path = folder / relative.strip()
    return check_image_exists(path, where) if check else str(path)


def image_beside(annotation: Path, where: str, check: bool = True, stems: Sequence[str] = ()) -> str:
    """The image named like the annotation file (iBUG ``.pts`` layout), in the same folder.

    Tries the annotation's stem, then each of ``stems``, with every extension of ``IMAGE_EXTENSIONS``.
    """
    for stem in (annotation.stem, *stems):
        for ext in IMAGE_EXTENSIONS:
            candidate = annotation.with_name(stem + ext)
            if candidate.is_file():
                return str(candidate)
    if check:
        names = ", ".join(f"{stem}.*" for stem in (annotation.stem, *stems))
        raise AnnotationError(f"{where}: image not found: no {names} beside it")
    return str(annotation.with_suffix(IMAGE_EXTENSIONS[0]))


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, stripped line)`` for every non-blank line of a UTF-8 text file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not a UTF-8 text file ({err})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def csv_records(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data row of a CSV file with a header line.

    Raises:
        AnnotationError: a required column is missing, or a row has more or fewer fields than the header.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in required if name not in header]
        if missing:
            raise AnnotationError(f"{at_line(path, 1)}: missing column(s) {missing} in header {header}")
        for fields in reader:
            where = at_line(path, reader.line_num)
            if not fields:  # a blank line
                continue
            if len(fields) != len(header):
                raise AnnotationError(f"{where}: {len(fields)} fields, the header has {len(header)}")
            yield reader.line_num, dict(zip(header, fields))


# -------------------------------------------------------------------------------------------- splits


def check_split(reader: str, split: str, known: Sequence[str]) -> None:
    """A ValueError if ``split`` is not one of the reader's splits."""
    if split not in known:
        raise ValueError(f"unknown split {split!r} for {reader!r}; known: {', '.join(known)}")


def no_samples(reader: str, split: str, where: Path | str, present: Iterable[str] = ()) -> ValueError:
    """The error for a split with no sample in an annotation file (never return an empty dataset)."""
    present = sorted(set(present))
    found = f" (it has: {', '.join(present)})" if present else ""
    return ValueError(f"{reader}: no sample of split {split!r} in {where}{found}")


# ------------------------------------------------------------------------------------ MATLAB files


class MatFile:
    """Variables of a MATLAB ``.mat`` file, v5 (via scipy) or v7.3 (HDF5, via h5py).

    Values come back in MATLAB's orientation whatever the format: a numeric variable has MATLAB's
    shape (rows first; v7.3 stores arrays transposed, which this undoes, so an ``H x W x 3`` image is
    ``(H, W, 3)``); a cell array is a lazy sequence of its elements in MATLAB's linear (column-major)
    order; a char array is a ``str``. Use as a context manager (a v7.3 file stays open for lazy cells).
    """

    def __init__(self, path: Path):
        import h5py

        self.path = Path(path)
        require_file(self.path, "MATLAB file")
        self._h5 = None
        self._v5: dict = {}
        if h5py.is_hdf5(self.path):
            self._h5 = h5py.File(self.path, "r")
        else:
            import scipy.io

            try:
                self._v5 = scipy.io.loadmat(self.path)
            except (ValueError, NotImplementedError, OSError) as err:
                raise AnnotationError(f"{self.path}: not a readable MATLAB file ({err})") from None

    def __enter__(self) -> MatFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def names(self) -> list[str]:
        if self._h5 is not None:
            return sorted(k for k in self._h5.keys() if not k.startswith("#"))
        return sorted(k for k in self._v5 if not k.startswith("__"))

    def _raw(self, name: str):
        if name not in self.names():
            raise AnnotationError(f"{self.path}: no variable {name!r}; it has {self.names()}")
        return self._h5[name] if self._h5 is not None else self._v5[name]

    def array(self, name: str, ndim: int | None = None) -> np.ndarray:
        """A numeric variable, MATLAB shape; with ``ndim``, an AnnotationError if its rank differs."""
        raw = self._raw(name)
        value = self._h5_value(raw) if self._h5 is not None else np.asarray(raw)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise AnnotationError(f"{self.path}: variable {name!r} is not a numeric array")
        if ndim is not None and value.ndim != ndim:
            raise AnnotationError(f"{self.path}: variable {name!r} has shape {value.shape}, expected {ndim} dims")
        return value

    def cell(self, name: str) -> _Cell:
        """A cell-array variable as a lazy sequence of its elements (numeric arrays or strings)."""
        raw = self._raw(name)
        if raw.dtype.kind != "O":
            raise AnnotationError(f"{self.path}: variable {name!r} is not a cell array")
        if self._h5 is not None:
            refs = np.asarray(raw[()]).T.ravel(order="F")
            return _Cell(refs, lambda ref: self._h5_value(self._h5[ref]))
        return _Cell(raw.ravel(order="F"), _v5_value)

    def strings(self, name: str) -> list[str]:
        """A cell array of char arrays as strings."""
        cell = self.cell(name)
        values = [cell[i] for i in range(len(cell))]
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise AnnotationError(f"{at_row(self.path, i + 1)}: {name!r} element is not a string")
        return values

    def _h5_value(self, node):
        attrs = node.attrs
        matlab_class = attrs.get("MATLAB_class", b"")
        matlab_class = matlab_class.decode() if isinstance(matlab_class, bytes) else str(matlab_class)
        if attrs.get("MATLAB_empty", 0):
            return "" if matlab_class == "char" else np.zeros((0,))
        data = np.asarray(node[()]).T
        if matlab_class == "char":
            return "".join(chr(c) for c in data.ravel(order="F"))
        if data.dtype.kind == "O":
            return [self._h5_value(self._h5[ref]) for ref in data.ravel(order="F")]
        return data


class _Cell(Sequence):
    """A lazily decoded cell array."""

    def __init__(self, items: np.ndarray, decode):
        self._items, self._decode = items, decode

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int):
        return self._decode(self._items[index])


def _v5_value(value):
    """A scipy.io.loadmat cell element: str for char arrays, else the array (or a list for a nested cell)."""
    value = np.asarray(value)
    if value.dtype.kind == "U":
        return "".join(value.ravel(order="F").tolist())
    if value.dtype.kind == "O":
        return [_v5_value(v) for v in value.ravel(order="F")]
    return value
