"""Evaluation reports: results.json, Markdown tables in the paper's layouts, CED plots, prediction grids.

``results.json`` layout (written by :func:`write_results`, read by :func:`load_results` and
:func:`compare_runs`). NME, FR, AUC and PCK are stored as **fractions** (0.0436, not 4.36); the Markdown
prints NME, FR and PCK in % and AUC as a fraction (as Table 1 does). NaN is stored as ``null``::

    {
      "version": 2,
      "run": "awing-1hg-wflw",                 # the run's name (labels tables and plots)
      "schema": "wflw98",                      # the schema's name
      "testsets": {
        "test": {                              # one entry per test set; the dict of evaluate_predictions
          "num_images": 2500,                  # images with a defined NME (used by every aggregate)
          "num_unscored": 0,                   # images read but without one (no scored point, zero normaliser)
          "num_unreadable": 0,                 # images that could not be read (awing.engine.evaluate only)
          "unreadable_images": [],             # the first 20 of their paths (awing.engine.evaluate only)
          "normaliser": "inter_ocular",        # the main normaliser
          "convention": "paper",               # metrics.CONVENTIONS name the figures follow, or "custom"
          "pooling": "per_image",              # "per_image" (paper) or "pooled" (mmpose): how "nme" averages
          "thresholds": [0.08, 0.1],
          "nme": 0.0436,
          "nme_by_pooling": {"per_image": 0.0436, "pooled": 0.0437},   # the main normaliser's NME both ways
          "fr":  {"0.08": 0.051, "0.1": 0.0284},   # keys: metrics.threshold_key(t)
          "auc": {"0.08": 0.47, "0.1": 0.5719},
          "nme_by_normaliser": {"inter_ocular": 0.0436, "inter_pupil": 0.061, "box": 0.0151},
          "per_point_nme": [...],              # N values
          "per_image_nme": [...],              # B values in dataset order (null where undefined)
          "scored_in": "fgnet68 (model w300_68, data fgnet68)",  # only where the layouts differ
          "num_points_scored": 29,             # only on a partial mapping (awing.engine.evaluate): the points
          "num_points_in_layout": 68,          #   scored, of the scoring layout's; "scored_points": their
          "normaliser_fallback": "...",        #   indices; why "gt_box" normalises (only where it does)
          "subsets": {                         # schema subsets from attributes + explicit ones
            "pose": {"num_images": 326, "nme": ..., "fr": {...}, "auc": {...},
                     "nme_by_normaliser": {...}, "indices": [...]},   # indices into per_image_nme
            ...
          },
          "pck": {"alpha": 0.2, "mean": ..., "per_point": [...], "groups": {"head": ..., ...}}  # PCK only
        }
      },
      "config": {...}                          # the run's configuration, free-form (may be absent)
    }

A subset's CED is recomputed from ``per_image_nme[indices]``; a run's CED from ``per_image_nme``.

Version 1 files (before the names above) are upgraded by :func:`load_results` (:func:`upgrade_results`):
their ``num_skipped`` meant the unreadable images where ``skipped_images`` is present (files of
``awing eval`` / training) and the images without a defined NME otherwise; ``nme_per_image`` and
``nme_pooled`` are ``nme_by_pooling``'s two values.

Every file is written atomically (a temporary file in the same folder, then a rename), so a reader sees
the old file or the new one. Plots use matplotlib's Agg renderer through :class:`matplotlib.figure.Figure`
(no pyplot, no global backend change); prediction grids are drawn with OpenCV.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from awing.core.checkpoint import atomic_file
from awing.engine.metrics import auc, ced_curve, threshold_key, to_jsonable

__all__ = [
    "RESULTS_VERSION",
    "make_results",
    "load_results",
    "upgrade_results",
    "write_results",
    "results_markdown",
    "plot_ced",
    "predictions_grid",
    "compare_runs",
    "comparison_markdown",
]

RESULTS_VERSION = 2
_DASH = "–"


# ------------------------------------------------------------------------------------ results files
def make_results(
    run: str, schema, testsets: Mapping[str, dict], config: Mapping | None = None, environment: Mapping | None = None
) -> dict:
    """The results.json dict: ``testsets`` maps a test-set name to :func:`evaluate_predictions`' dict.

    ``schema`` may be a Schema or its name; ``config`` is stored as given (e.g. ``dataclasses.asdict``);
    ``environment`` is :func:`awing.engine.runtime.environment` of the process that produced the results.
    """
    name = getattr(schema, "name", schema)
    out = {"version": RESULTS_VERSION, "run": str(run), "schema": name, "testsets": dict(testsets)}
    if config is not None:
        out["config"] = dict(config)
    if environment is not None:
        out["environment"] = dict(environment)
    return to_jsonable(out)


def upgrade_results(results: Mapping) -> dict:
    """A copy of a results dict in the current layout (:data:`RESULTS_VERSION`), upgraded from an earlier
    version (no ``version``: 1). Version 1 -> 2, in every test set: ``num_skipped`` becomes
    ``num_unreadable`` where ``skipped_images`` (renamed ``unreadable_images``) says it counted unreadable
    images, else ``num_unscored``; ``num_unscored`` is recounted from ``per_image_nme`` (its nulls) where
    present; ``nme_per_image`` / ``nme_pooled`` become ``nme_by_pooling``.

    Raises:
        ValueError: a version newer than this awing's.
    """
    data = dict(results)
    version = int(data.get("version") or 1)
    if version > RESULTS_VERSION:
        raise ValueError(f"results version {version} is newer than this awing's ({RESULTS_VERSION}); update awing")
    if version < 2:
        data["testsets"] = {name: _testset_v1_to_v2(m) for name, m in data["testsets"].items()}
    data["version"] = RESULTS_VERSION
    return data


def _testset_v1_to_v2(metrics: Mapping) -> dict:
    m = dict(metrics)
    skipped = m.pop("num_skipped", None)
    if "skipped_images" in m:  # written by awing.engine.evaluate, which overwrote num_skipped
        m["num_unreadable"] = skipped
        m["unreadable_images"] = m.pop("skipped_images")
    elif skipped is not None:
        m["num_unscored"] = skipped
    if m.get("per_image_nme") is not None:
        m["num_unscored"] = sum(v is None for v in m["per_image_nme"])
    pooled = {p: m.pop(f"nme_{p}") for p in ("per_image", "pooled") if f"nme_{p}" in m}
    if pooled:
        m["nme_by_pooling"] = pooled
    return m


def _as_results(results: Mapping, name: str) -> dict:
    """Accept a full results dict (upgraded to the current layout), or one test set's metrics (wrapped as
    test set ``test``)."""
    if "testsets" in results:
        out = upgrade_results(results)
        out.setdefault("run", name)
        return out
    if "nme" in results:
        return {"version": RESULTS_VERSION, "run": name, "testsets": {"test": dict(results)}}
    raise ValueError("results: expected a dict with 'testsets' (or one test set's metrics with 'nme')")


def _results_file(folder: Path) -> Path:
    """``folder/results.json``, else the one JSON file in ``folder`` with a ``testsets`` key."""
    candidate = folder / "results.json"
    if candidate.is_file():
        return candidate
    found = []
    for p in sorted(folder.glob("*.json")):
        try:
            if "testsets" in json.loads(p.read_text()):
                found.append(p)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
            continue
    if len(found) != 1:
        raise FileNotFoundError(
            f"{folder}: no results.json, and {len(found)} other results JSON files (need exactly one)"
        )
    return found[0]


def load_results(path: str | Path) -> dict:
    """A results dict, in the current layout (older files are upgraded: :func:`upgrade_results`), from a
    results JSON file, or from a folder holding ``results.json`` (or else exactly one JSON file with a
    ``testsets`` key).

    Raises:
        FileNotFoundError: a folder without one results file.
        ValueError: a JSON file that is not a results file, or one of a newer version.
    """
    path = Path(path)
    if path.is_dir():
        path = _results_file(path)
    data = json.loads(path.read_text())
    if "testsets" not in data:
        raise ValueError(f"{path}: not a results file (no 'testsets' key)")
    return upgrade_results(data)


def _write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    with atomic_file(path) as tmp:
        Path(tmp).write_text(text)
    return path


def write_results(results: Mapping, out_dir: str | Path, name: str = "results") -> dict[str, Path]:
    """Write ``{name}.json``, ``{name}.md`` (tables) and ``{name}_ced.png`` (CED curves) under ``out_dir``,
    each atomically.

    Args:
        results: a results dict (see the module docstring; :func:`make_results` builds one), or a single
            test set's metrics from :func:`evaluate_predictions` (stored as test set ``test``).
        out_dir: created if missing.
        name: file stem, and the run name when ``results`` has none. With the default, the JSON is the
            ``results.json`` that :func:`compare_runs` looks for.
    Returns:
        ``{"json": path, "markdown": path, "ced": path}``.
    """
    data = to_jsonable(_as_results(results, name))
    out_dir = Path(out_dir)
    paths = {
        "json": out_dir / f"{name}.json",
        "markdown": out_dir / f"{name}.md",
        "ced": out_dir / f"{name}_ced.png",
    }
    _write_text(paths["json"], json.dumps(data, indent=1, allow_nan=False) + "\n")
    _write_text(paths["markdown"], results_markdown(data))
    curves = []
    for ts, m in data["testsets"].items():
        per_image = m.get("per_image_nme") or []
        curves.append({"label": ts, "nme": per_image})
        for sub, sm in (m.get("subsets") or {}).items():
            values = [per_image[i] for i in sm.get("indices", []) if i < len(per_image)]
            curves.append({"label": f"{ts} / {sub}", "nme": values, "linestyle": "--", "linewidth": 1.0})
    plot_ced(curves, paths["ced"], _max_threshold([data]), title=f"CED: {data.get('run', name)}")
    return paths


# ------------------------------------------------------------------------------------------ formatting
def _pct(v) -> str:
    return _DASH if v is None else f"{100.0 * v:.2f}"


def _frac(v) -> str:
    return _DASH if v is None else f"{v:.4f}"


def _tlabel(key: str | float) -> str:
    """``"0.1"`` -> ``"10"`` (the paper's FR_10% / AUC_10% subscript)."""
    return f"{100.0 * float(key):g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _threshold_keys(metrics: Sequence[Mapping]) -> list[str]:
    keys: dict[str, float] = {}
    for m in metrics:
        for t in m.get("thresholds") or []:
            keys.setdefault(threshold_key(t), float(t))
        for k in (m.get("fr") or {}) | (m.get("auc") or {}):
            keys.setdefault(k, float(k))
    return sorted(keys, key=keys.get)


def _other_normalisers(metrics: Sequence[Mapping]) -> list[str]:
    mains = {m.get("normaliser") for m in metrics if m.get("normaliser")}
    names: list[str] = []
    for m in metrics:
        for k in m.get("nme_by_normaliser") or {}:
            if k not in mains and k not in names:
                names.append(k)
    return names


def _metric_rows(metrics: Sequence[Mapping]) -> list[tuple[str, Callable]]:
    """(label, getter) for every metric row/column: main NME, other normalisers' NME, FR_t, AUC_t."""
    rows: list[tuple[str, Callable]] = [("NME %", lambda m: _pct(m.get("nme")))]
    for k in _other_normalisers(metrics):
        rows.append((f"NME {k} %", lambda m, k=k: _pct((m.get("nme_by_normaliser") or {}).get(k))))
    for k in _threshold_keys(metrics):
        t = _tlabel(k)
        rows.append((f"FR_{t} %", lambda m, k=k: _pct((m.get("fr") or {}).get(k))))
        rows.append((f"AUC_{t}", lambda m, k=k: _frac((m.get("auc") or {}).get(k))))
    return rows


_POOLING_WORDS = {"per_image": "NME = mean of per-image NMEs", "pooled": "NME pooled over all scored points"}


def _convention_label(metrics: Mapping) -> str:
    """``paper (inter_ocular, NME = mean of per-image NMEs)`` for a test set's metrics dict."""
    pooling = metrics.get("pooling") or "per_image"
    words = _POOLING_WORDS.get(pooling, pooling)
    return f"{metrics.get('convention') or 'custom'} ({metrics.get('normaliser', '?')}, {words})"


def _partial_note(name: str, metrics: Mapping) -> str:
    """One line for a test set scored on part of its points (a partial layout mapping)."""
    layout = (metrics.get("scored_in") or "").split(" ")[0] or "its"
    note = (f"`{name}`: scored on {metrics['num_points_scored']} of {metrics.get('num_points_in_layout', '?')} "
            f"{layout} points (those the model's and the data's layouts share), normaliser {metrics.get('normaliser')}")
    fallback = metrics.get("normaliser_fallback")
    return note + (f" ({fallback})." if fallback else ".")


def _pck_label(group: str) -> str:
    return group.replace("_", " ").title()


def results_markdown(results: Mapping) -> str:
    """One run's tables: a summary (rows = test sets and their subsets, columns = NME % / FR_x % / AUC_x,
    as Tables 2-4), one Table-1 layout per test set with subsets (rows = metrics, columns = the test set
    and its subsets), and Table 8's PCK layout where PCK was computed."""
    data = _as_results(results, "results")
    testsets: Mapping[str, Mapping] = data["testsets"]
    lines = [f"# Results: {data.get('run', '')}", ""]
    norms = sorted({m.get("normaliser") for m in testsets.values() if m.get("normaliser")})
    lines.append(
        f"Schema `{data.get('schema', '?')}`, normaliser {', '.join(norms) or '?'}. "
        "NME and FR in % of the normaliser, AUC as a fraction of the CED area up to the threshold."
    )
    conventions = sorted({_convention_label(m) for m in testsets.values() if m.get("convention") or m.get("pooling")})
    if conventions:
        lines.append(f"Evaluation convention: {'; '.join(conventions)}.")
    lines += [_partial_note(ts, m) for ts, m in testsets.items() if m.get("num_points_scored") is not None]
    lines.append("")

    every = [m for ts in testsets.values() for m in [ts, *(ts.get("subsets") or {}).values()]]
    metric_rows = _metric_rows(every)
    header = ["Test set", "Images"] + [label for label, _ in metric_rows]
    rows = []
    for ts, m in testsets.items():
        rows.append([ts, str(m.get("num_images", _DASH))] + [get(m) for _, get in metric_rows])
        for sub, sm in (m.get("subsets") or {}).items():
            rows.append([f"{ts} / {sub}", str(sm.get("num_images", _DASH))] + [get(sm) for _, get in metric_rows])
    lines += ["## Summary", "", *_table(header, rows), ""]

    for ts, m in testsets.items():
        subsets = m.get("subsets") or {}
        if subsets:
            cols = [m, *subsets.values()]
            header = ["Metric", f"{ts} ({m.get('num_images', '?')})"]
            header += [f"{sub} ({sm.get('num_images', '?')})" for sub, sm in subsets.items()]
            rows = [[label] + [get(c) for c in cols] for label, get in _metric_rows(cols)]
            lines += [f"## {ts}: by subset", "", *_table(header, rows), ""]
        if m.get("pck"):
            p = m["pck"]
            groups = p.get("groups") or {}
            header = ["Test set"] + [_pck_label(g) for g in groups] + ["Mean"]
            rows = [[ts] + [_pct(v) for v in groups.values()] + [_pct(p.get("mean"))]]
            for sub, sm in subsets.items():
                if "pck_mean" in sm:
                    rows.append([f"{ts} / {sub}"] + [_DASH] * len(groups) + [_pct(sm["pck_mean"])])
            lines += [f"## {ts}: PCK@{p.get('alpha')} (%)", "", *_table(header, rows), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ CED plots
def _max_threshold(results_list: Sequence[Mapping]) -> float:
    ts = [
        float(t)
        for r in results_list
        for m in r.get("testsets", {}).values()
        for t in (m.get("thresholds") or [float(k) for k in (m.get("auc") or {})])
    ]
    return max(ts) if ts else 0.10


def plot_ced(
    curves: Sequence[Mapping], path: str | Path, max_threshold: float = 0.10, title: str | None = None
) -> Path:
    """Plot CED curves (x: NME % from 0 to ``max_threshold``; y: fraction of images) to a PNG.

    Args:
        curves: dicts with ``label`` and ``nme`` (per-image NMEs, fractions; None / NaN ignored), and
            optionally matplotlib line keywords ``color``, ``linestyle``, ``linewidth``.
        path: PNG to write (640 x 480 pixels).
        max_threshold: the x-axis limit as a fraction (0.10 = 10 %); the legend gives AUC at it.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    ax = fig.add_subplot()
    for c in curves:
        values = [np.nan if v is None else float(v) for v in c["nme"]]
        finite = [v for v in values if np.isfinite(v)]
        t, f = ced_curve(finite, max_threshold, 1001)
        label = str(c["label"])
        if finite:
            label += f" (NME {100 * np.mean(finite):.2f}%, AUC {auc(finite, max_threshold):.4f})"
        style = {k: c[k] for k in ("color", "linestyle", "linewidth") if k in c}
        ax.plot(100.0 * t, f, label=label, **style)
    ax.set_xlim(0.0, 100.0 * max_threshold)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("Fraction of images")
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    if curves:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


# ------------------------------------------------------------------------------------ prediction grids
def predictions_grid(
    images: Sequence[np.ndarray],
    preds: Sequence[np.ndarray] | np.ndarray,
    gts: Sequence[np.ndarray] | np.ndarray | None,
    path: str | Path,
    cols: int = 4,
    labels: Sequence[str] | None = None,
    radius: int | None = None,
) -> Path:
    """Tile images with ground truth (green) and predictions (red) drawn on them; save a PNG.

    Args:
        images: HxWx3 uint8 RGB images (sizes may differ; each cell is the largest size, padded black).
        preds: per image (N, 2) predicted points in that image's pixels (NaN points are not drawn).
        gts: per image (N, 2) ground-truth points, or None.
        path: PNG to write.
        cols: images per row.
        labels: optional text per image (e.g. its NME), drawn in the top-left corner.
        radius: dot radius in pixels (default: about 1/128 of the larger cell side, at least 1).
    Returns:
        The path written. The grid is ``ceil(n / cols) * H`` by ``min(n, cols) * W`` pixels.
    """
    import cv2

    if len(images) == 0:
        raise ValueError("predictions_grid: no images")
    if len(preds) != len(images) or (gts is not None and len(gts) != len(images)):
        raise ValueError("predictions_grid: images, preds and gts must have the same length")
    rgb = []
    for im in images:
        im = np.asarray(im)
        if im.dtype != np.uint8:
            im = np.clip(im * 255.0 if im.max() <= 1.0 else im, 0, 255).astype(np.uint8)
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=-1)
        rgb.append(np.ascontiguousarray(im[..., :3]))
    h = max(im.shape[0] for im in rgb)
    w = max(im.shape[1] for im in rgb)
    n, cols = len(rgb), max(1, min(int(cols), len(rgb)))
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    r = radius if radius is not None else max(1, round(max(h, w) / 128))
    shift = 4  # sub-pixel drawing: coordinates in 1/16 pixel
    scale = 1 << shift

    def draw(canvas: np.ndarray, pts, colour) -> None:
        for x, y in np.asarray(pts, dtype=np.float64).reshape(-1, 2):
            if np.isfinite(x) and np.isfinite(y):
                centre = (int(round(x * scale)), int(round(y * scale)))
                cv2.circle(canvas, centre, r * scale, colour, -1, cv2.LINE_AA, shift)

    for i, im in enumerate(rgb):
        cell = im.copy()
        if gts is not None:
            draw(cell, gts[i], (0, 255, 0))
        draw(cell, preds[i], (255, 0, 0))
        if labels is not None and i < len(labels) and labels[i]:
            text, font = str(labels[i]), cv2.FONT_HERSHEY_SIMPLEX
            scale_txt = max(0.3, max(h, w) / 512)
            (_, th), _ = cv2.getTextSize(text, font, scale_txt, 1)
            org = (3, 3 + th)
            cv2.putText(cell, text, org, font, scale_txt, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(cell, text, org, font, scale_txt, (255, 255, 255), 1, cv2.LINE_AA)
        y0, x0 = (i // cols) * h, (i % cols) * w
        grid[y0 : y0 + im.shape[0], x0 : x0 + im.shape[1]] = cell
    path = Path(path)
    with atomic_file(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
    return path


# ------------------------------------------------------------------------------------------- compare
def _run_labels(runs: Sequence[tuple[Path, Mapping]]) -> list[str]:
    labels: list[str] = []
    for p, r in runs:
        base = str(r.get("run") or (p.stem if p.is_file() else p.name))
        label, k = base, 2
        while label in labels:
            label, k = f"{base} ({k})", k + 1
        labels.append(label)
    return labels


def comparison_markdown(runs: Sequence[tuple[str, Mapping]]) -> str:
    """Side-by-side tables of several runs: per test set, one row per run with the metrics and each
    subset's NME as columns; for test sets with subsets also Table 1's layout (a block of run rows per
    metric, columns = test set and subsets, e.g. 300W common / challenge); PCK per group where present."""
    testsets: list[str] = []
    for _, r in runs:
        testsets += [ts for ts in r["testsets"] if ts not in testsets]
    lines = ["# Comparison", "", "Runs: " + ", ".join(f"`{label}`" for label, _ in runs) + ".", ""]
    lines.append("NME and FR in % of the normaliser, AUC as a fraction; – where a run lacks the value.")
    lines.append("")
    for ts in testsets:
        present = [(label, r["testsets"][ts]) for label, r in runs if ts in r["testsets"]]
        ms = [m for _, m in present]
        subsets: list[str] = []
        for m in ms:
            subsets += [s for s in (m.get("subsets") or {}) if s not in subsets]
        metric_rows = _metric_rows(ms + [sm for m in ms for sm in (m.get("subsets") or {}).values()])
        normalisers = {m.get("normaliser") for m in ms}
        header = ["Run", "Images"] + [label for label, _ in metric_rows] + [f"{s} NME %" for s in subsets]
        if len(normalisers) > 1:
            header.insert(2, "Normaliser")
        rows = []
        for label, m in present:
            row = [label, str(m.get("num_images", _DASH))]
            if len(normalisers) > 1:
                row.append(str(m.get("normaliser")))
            row += [get(m) for _, get in metric_rows]
            row += [_pct(((m.get("subsets") or {}).get(s) or {}).get("nme")) for s in subsets]
            rows.append(row)
        lines += [f"## {ts}", ""]
        if len(normalisers) > 1:
            lines += [
                f"**Warning:** runs use different normalisers ({', '.join(map(str, normalisers))}).",
                "",
            ]
        lines += [*_table(header, rows), ""]

        if subsets:
            header = ["Metric", "Run", ts] + subsets
            rows = []
            for metric, get in metric_rows:
                for label, m in present:
                    subs = m.get("subsets") or {}
                    rows.append([metric, label, get(m)] + [get(subs[s]) if s in subs else _DASH for s in subsets])
            lines += [f"### {ts}: by subset", "", *_table(header, rows), ""]

        with_pck = [(label, m["pck"]) for label, m in present if m.get("pck")]
        if with_pck:
            groups: list[str] = []
            for _, p in with_pck:
                groups += [g for g in (p.get("groups") or {}) if g not in groups]
            header = ["Run"] + [_pck_label(g) for g in groups] + ["Mean"]
            rows = [
                [label] + [_pct((p.get("groups") or {}).get(g)) for g in groups] + [_pct(p.get("mean"))]
                for label, p in with_pck
            ]
            lines += [f"### {ts}: PCK@{with_pck[0][1].get('alpha')} (%)", "", *_table(header, rows), ""]
    return "\n".join(lines)


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path, name: str = "comparison") -> dict[str, Path]:
    """Compare runs side by side from their results files.

    Args:
        run_dirs: run directories (each with a ``results.json``, see :func:`load_results`) or results JSON
            paths.
        out_dir: where ``{name}.md`` and ``{name}_ced.png`` go (created if missing).
    Returns:
        ``{"markdown": path, "ced": path}``. The plot overlays every run's CED for every test set (one
        colour per run, one line style per test set), up to the largest FR/AUC threshold of any run.
    """
    if not run_dirs:
        raise ValueError("compare_runs: no runs given")
    loaded = [(Path(p), load_results(p)) for p in run_dirs]
    labels = _run_labels(loaded)
    runs = [(label, r) for label, (_, r) in zip(labels, loaded)]
    out_dir = Path(out_dir)
    paths = {"markdown": out_dir / f"{name}.md", "ced": out_dir / f"{name}_ced.png"}
    _write_text(paths["markdown"], comparison_markdown(runs))

    testsets: list[str] = []
    for _, r in runs:
        testsets += [ts for ts in r["testsets"] if ts not in testsets]
    styles = ["-", "--", ":", "-."]
    curves = []
    for i, (label, r) in enumerate(runs):
        for j, ts in enumerate(testsets):
            if ts not in r["testsets"]:
                continue
            curves.append(
                {
                    "label": label if len(testsets) == 1 else f"{label} / {ts}",
                    "nme": r["testsets"][ts].get("per_image_nme") or [],
                    "color": f"C{i % 10}",
                    "linestyle": styles[j % len(styles)],
                }
            )
    plot_ced(curves, paths["ced"], _max_threshold([r for _, r in runs]), title="CED comparison")
    return paths
