"""Published PSNR numbers on the benchmarks in ../shared/data (its README cites them).

They are shown beside measured rows, marked "published", never mixed into them.
Sources: CBM3D (Dabov et al. 2007), CDnCNN (Zhang et al. 2017), FFDNet (Zhang et
al. 2018), Restormer (Zamir et al. 2022), PromptIR (Potlapalli et al. 2023,
3-task model); grey BSD68: BM3D and DnCNN-S as the DnCNN paper tabulates them;
JPEG and ARCNN rows from ARCNN (Dong et al. 2015) on Y; bicubic SR rows from the SR
literature (Y, border = scale).
"""

from __future__ import annotations

PUBLISHED: dict[tuple[str, str], dict[str, float]] = {
    ("CBSD68", "denoise-15"): {
        "CBM3D": 33.52,
        "CDnCNN": 33.89,
        "FFDNet": 33.87,
        "Restormer": 34.39,
        "PromptIR (all-in-one)": 33.98,
    },
    ("CBSD68", "denoise-25"): {
        "CBM3D": 30.71,
        "CDnCNN": 31.23,
        "FFDNet": 31.21,
        "Restormer": 31.78,
        "PromptIR (all-in-one)": 31.31,
    },
    ("CBSD68", "denoise-50"): {
        "CBM3D": 27.38,
        "CDnCNN": 27.92,
        "FFDNet": 27.96,
        "Restormer": 28.59,
        "PromptIR (all-in-one)": 28.06,
    },
    ("BSD68", "denoise-15"): {"BM3D": 31.07, "DnCNN-S": 31.73},
    ("BSD68", "denoise-25"): {"BM3D": 28.57, "DnCNN-S": 29.23},
    ("BSD68", "denoise-50"): {"BM3D": 25.62, "DnCNN-S": 26.23},
    ("LIVE1", "jpeg-y-10"): {"JPEG": 27.77, "ARCNN": 28.96},
    ("LIVE1", "jpeg-y-20"): {"JPEG": 30.07, "ARCNN": 31.29},
    ("LIVE1", "jpeg-y-30"): {"JPEG": 31.41, "ARCNN": 32.67},
    ("LIVE1", "jpeg-y-40"): {"JPEG": 32.35, "ARCNN": 33.63},
    ("Set5", "sr-x4"): {"Bicubic": 28.42},
    ("Set14", "sr-x4"): {"Bicubic": 26.00},
}


def published_rows(dataset: str, task: str) -> dict[str, float]:
    return PUBLISHED.get((dataset, task), {})
