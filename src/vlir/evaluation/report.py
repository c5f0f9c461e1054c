"""What a benchmark run leaves for people: tables, per-image CSV, a comparison sheet."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

from vlir.evaluation.published import published_rows
from vlir.evaluation.runner import BenchmarkResult, cached_sample, default_cache

TILE = 240
"""Width of a full-image tile on the comparison sheet."""
ZOOM = 3
"""Magnification of the detail crop under each tile."""


def _fmt(value: float, digits: int) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def summary_rows(result: BenchmarkResult) -> list[dict]:
    rows = []
    for method in result.methods:
        seconds = method.mean("seconds")
        megapixels = method.mean("megapixels")
        rows.append(
            {
                "method": method.name + (" (oracle)" if method.oracle else ""),
                "images": len(method.per_image),
                "psnr": method.mean("psnr"),
                "ssim": method.mean("ssim"),
                "psnr_gt_mean": method.mean("psnr_gt_mean"),
                "niqe": method.mean("niqe"),
                "brisque": method.mean("brisque"),
                "seconds_per_image": seconds,
                "megapixels_per_second": megapixels / seconds if seconds else float("nan"),
            }
        )
    return rows


def write_tables(result: BenchmarkResult) -> Path:
    """results.md, results.csv (one row per method) and per_image.csv."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(result)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "per_image.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["method", "image", "psnr", "ssim", "psnr_gt_mean", "niqe", "brisque", "seconds"]
        )
        for method in result.methods:
            for row in method.per_image:
                writer.writerow(
                    [
                        method.name,
                        row["image"],
                        row["psnr"],
                        row["ssim"],
                        row.get("psnr_gt_mean", ""),
                        row.get("niqe", ""),
                        row.get("brisque", ""),
                        row["seconds"],
                    ]
                )
    task = result.task
    protocol = (
        "standard protocol"
        if task.standard
        else "in-project synthetic benchmark (fixed seed; not comparable with published tables)"
    )
    has_nr = any(not math.isnan(r["niqe"]) for r in rows)
    has_gt_mean = "low_light" in task.degradations
    header = "| method | images | PSNR (dB) | SSIM |" + (" GT-mean PSNR |" if has_gt_mean else "")
    header += (" NIQE | BRISQUE |" if has_nr else "") + " s / image | MP / s |"
    lines = [
        f"# {result.dataset.name} · {task.name}",
        "",
        f"PSNR/SSIM on {task.channel.upper()}"
        + (f", border {task.shave} shaved" if task.shave else "")
        + f"; seed {result.seed}; {protocol}."
        + (
            " GT-mean PSNR: the output scaled to the ground truth's mean grey level first"
            " (how bright the scene was is not in an under-exposed photo)."
            if has_gt_mean
            else ""
        ),
        "",
        header,
        "|---|---:|---:|---:|"
        + ("---:|" if has_gt_mean else "")
        + ("---:|---:|" if has_nr else "")
        + "---:|---:|",
    ]
    for r in rows:
        gt_mean = f" {_fmt(r['psnr_gt_mean'], 2)} |" if has_gt_mean else ""
        nr = f" {_fmt(r['niqe'], 2)} | {_fmt(r['brisque'], 2)} |" if has_nr else ""
        lines.append(
            f"| {r['method']} | {r['images']} | {_fmt(r['psnr'], 2)} | {_fmt(r['ssim'], 4)} |"
            f"{gt_mean}{nr}"
            f" {_fmt(r['seconds_per_image'], 3)} | {_fmt(r['megapixels_per_second'], 2)} |"
        )
    published = published_rows(result.dataset.name, task.name)
    if published:
        lines += [
            "",
            "Published (not measured here, for reference):",
            "",
            "| method | PSNR (dB) |",
            "|---|---:|",
        ]
        lines += [f"| {name} (published) | {value:.2f} |" for name, value in published.items()]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return out / "results.md"


def _tile(image: np.ndarray, label: str) -> np.ndarray:
    """Full view resized to TILE wide, a ZOOM-x centre crop beneath, a label on top."""
    rgb = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    height, width = rgb.shape[:2]
    view = cv2.resize(
        rgb, (TILE, max(1, round(height * TILE / width))), interpolation=cv2.INTER_AREA
    )
    side = TILE // ZOOM
    y, x = max(0, height // 2 - side // 2), max(0, width // 2 - side // 2)
    crop = cv2.resize(
        rgb[y : y + side, x : x + side], (TILE, TILE), interpolation=cv2.INTER_NEAREST
    )
    bar = np.full((22, TILE, 3), 255, np.uint8)
    cv2.putText(bar, label[:30], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, view, crop], axis=0)


def _pad_to(tile: np.ndarray, height: int) -> np.ndarray:
    pad = height - tile.shape[0]
    return np.pad(tile, ((0, pad), (0, 0), (0, 0)), constant_values=255) if pad else tile


def write_sheet(result: BenchmarkResult, count: int = 4, cache: Path | None = None) -> Path:
    """sheet.png (grid) and sheet.html (self-contained): input / each method / ground truth."""
    from vlir.evaluation.tasks import dataset_images
    from vlir.io import load_image

    out = result.out_dir
    paths = dataset_images(result.dataset)[: min(count, len(result.images))]
    grid_rows, html_rows = [], []
    for index, path in enumerate(paths):
        sample, target = cached_sample(
            result.task, result.dataset, path, index, result.seed, cache or default_cache()
        )
        shown = sample.degraded
        if sample.scale > 1:
            shown = np.repeat(np.repeat(shown, sample.scale, 0), sample.scale, 1)
        tiles = [("input", shown)]
        for method in result.methods:
            row = next((r for r in method.per_image if r["image"] == path.stem), None)
            output_file = out / "outputs" / method.name / f"{path.stem}.png"
            if row is None or not output_file.exists():
                continue
            tiles.append((f"{method.name} {row['psnr']:.2f} dB", load_image(output_file).rgb))
        tiles.append(("ground truth", target))
        rendered = [_tile(image, label) for label, image in tiles]
        height = max(t.shape[0] for t in rendered)
        grid_rows.append(np.concatenate([_pad_to(t, height) for t in rendered], axis=1))
        cells = "".join(
            f"<td><div>{html.escape(label)}</div><img src='data:image/png;base64,"
            f"{_png_base64(tile)}'></td>"
            for (label, _), tile in zip(tiles, rendered, strict=True)
        )
        html_rows.append(f"<tr><th>{html.escape(path.stem)}</th>{cells}</tr>")
    width = max(row.shape[1] for row in grid_rows)
    grid = np.concatenate(
        [
            np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in grid_rows
        ],
        axis=0,
    )
    PILImage.fromarray(grid).save(out / "sheet.png")
    title = html.escape(f"{result.dataset.name} · {result.task.name}")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif}td{vertical-align:top;padding:4px}"
        "td div{font-size:12px}</style></head>"
        f"<body><h1>{title}</h1><p>Top: whole image; bottom: centre crop x{ZOOM}.</p>"
        f"<table>{''.join(html_rows)}</table></body></html>"
    )
    (out / "sheet.html").write_text(page)
    return out / "sheet.png"


def _png_base64(tile: np.ndarray) -> str:
    buffer = io.BytesIO()
    PILImage.fromarray(tile).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()
