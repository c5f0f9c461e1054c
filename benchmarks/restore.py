"""The shipped restorer against classical baselines, prompt control, speed and memory.

All rows on data never trained on (CBSD68, BSD68 in grey, LIVE1, Set5, Set14; synthetic
tasks are in-project benchmarks with a fixed seed).

    python benchmarks/restore.py --out benchmarks/results/restore [--model restorer[,B...]] [--bm3d]
        [--tasks sr:2,Set14] [--skip-quality] [--skip-control] [--skip-speed] [--device cuda]

``--bm3d`` adds CBM3D at every sigma (about 15 minutes per sigma on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vlir.deconvolution import psf_to_otf, wiener_deconvolve
from vlir.degradations import get_op, parse_ops
from vlir.evaluation import baselines_for, get_method, parse_task, psnr, run_benchmark
from vlir.evaluation.models import restorer_variant
from vlir.evaluation.report import write_sheet, write_tables
from vlir.io import load_image
from vlir.pipeline import Restorer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval"

TASKS = [
    ("denoise:15", "CBSD68"),
    ("denoise:25", "CBSD68"),
    ("denoise:50", "CBSD68"),
    ("denoise:15", "BSD68"),  # grey: one plane of noise (the engine's, as a grey file holds)
    ("denoise:25", "BSD68"),
    ("denoise:50", "BSD68"),
    ("jpeg-y:10", "LIVE1"),
    ("jpeg-y:20", "LIVE1"),
    ("jpeg-y:30", "LIVE1"),
    ("jpeg-y:40", "LIVE1"),
    ("sr:2", "Set5"),
    ("sr:4", "Set5"),
    ("sr:2", "Set14"),
    ("sr:4", "Set14"),
    ("rain", "CBSD68"),
    ("haze", "CBSD68"),
    ("low_light", "CBSD68"),
    ("motion_blur", "CBSD68"),
    ("defocus", "CBSD68"),
    ("blur", "CBSD68"),
    ("blur+noise", "CBSD68"),
]


def quality_tables(args: argparse.Namespace) -> list[str]:
    tables = []
    chosen = set(args.tasks.split(",")) if args.tasks else None
    for task_text, dataset in TASKS:
        names = {task_text, dataset, f"{task_text}@{dataset}"}
        if chosen is not None and not names & chosen:
            continue
        task = parse_task(task_text)
        methods = [m for m in baselines_for(task.degradations) if args.bm3d or m != "bm3d"]
        if task.kind == "denoise" and args.bm3d and "bm3d" not in methods:
            methods.append("bm3d")
        methods.extend(args.model.split(","))
        resolved = [get_method(name, device=args.device) for name in methods]
        out = args.out / f"{dataset}-{task.name}"
        start = time.time()
        result = run_benchmark(task, DATA / dataset, resolved, out, limit=args.limit)
        tables.append(write_tables(result).read_text())
        write_sheet(result, 3)
        print(f"{dataset} {task.name}: {time.time() - start:.0f} s", flush=True)
    return tables


ORACLE_BALANCE = 0.001
"""Of 0.001 and 0.01, the balance that brought the noise-free oracle nearer the clean photo
(on the first 4 CBSD68 photos)."""


def spectral_oracle(
    degraded: np.ndarray, clean: np.ndarray, kernel: np.ndarray, noise_sigma: float
) -> np.ndarray:
    """The best linear, shift-invariant restoration of ``degraded`` [H, W, 3] (``clean``
    blurred by ``kernel``, then white noise of ``noise_sigma`` on 0-255): Wiener's filter
    given the clean photo's own power spectrum, frequency by frequency. No restorer can
    know that spectrum; where even this lands nearer the blurred photo than the clean one,
    the blind prompt's "the reverse" asks for more than the least-error restoration."""
    margin = max(kernel.shape)
    pad = ((margin, margin), (margin, margin))
    shape = (clean.shape[0] + 2 * margin, clean.shape[1] + 2 * margin)
    otf = psf_to_otf(kernel.astype(np.float32), shape)
    noise_power = (noise_sigma / 255.0) ** 2 * shape[0] * shape[1]  # per frequency
    out = np.empty_like(clean)
    for channel in range(3):
        signal_power = np.abs(np.fft.rfft2(np.pad(clean[..., channel], pad, "symmetric"))) ** 2
        gain = np.conj(otf) * signal_power / (np.abs(otf) ** 2 * signal_power + noise_power)
        spectrum = np.fft.rfft2(np.pad(degraded[..., channel], pad, "symmetric")) * gain
        restored = np.fft.irfft2(spectrum, s=shape)
        out[..., channel] = restored[margin:-margin, margin:-margin]
    return np.clip(out, 0, 1)


BLIND_BLURS = (2.0, 1.0)
"""Gaussian blur sigmas of the blind-prompt check: the issue's 2 (beyond the noise-free
oracle on most photos) and a milder 1, where the oracle reaches the clean side on every
photo, so a failure there is the restorer's and not the blur's."""


NOISE_SIGMA = 25.0
"""The noise on the blur + noise inputs of the prompt-control checks."""

BLUR_SWEEP = (0.5, 1.0, 1.5, 2.0)
"""Stated widths for a sigma-2 Gaussian blur alone: each divides out that much of it."""


def prompt_control(restorer: Restorer, limit: int) -> list[str]:
    """On blur+noise inputs, "denoise" should land nearer the blurred target than the clean
    one, the blind prompt the reverse; a stated sigma sweep should act monotonically (on
    sigma-50 noise, and on a Gaussian blur alone).
    Beside it, whether the blind prompt lands nearer the clean photo than "denoise" does
    (removing the blur too, it should).
    For scale, how often the reverse is reached at all by an oracle with no noise to fight:
    Wiener deconvolution of the noise-free blurred photo with the true kernel (a Gaussian
    of sigma 2 leaves nothing above ~0.2 cycles per pixel, so even it often lands nearer
    the blurred photo; hence the milder blur of ``BLIND_BLURS`` too), and by the best
    linear filter on the noisy photo (``spectral_oracle``)."""
    paths = sorted((DATA / "CBSD68").glob("*.png"))[:limit]
    closer_blur, sweep, blur_sweep, blur_psnr = [], [], [], []
    closer_clean = {sigma: [] for sigma in BLIND_BLURS}
    oracle_clean = {sigma: [] for sigma in BLIND_BLURS}
    spectral_clean = {sigma: [] for sigma in BLIND_BLURS}
    to_clean = {sigma: [] for sigma in BLIND_BLURS}  # (blind, "denoise") PSNR to the clean
    for index, path in enumerate(paths):
        clean = load_image(path).rgb
        for sigma in BLIND_BLURS:
            ops = f"blur sigma={sigma:g}, noise sigma={NOISE_SIGMA:g}"
            record = parse_ops(ops, np.random.default_rng(index))
            degraded = record.apply(clean)
            blurred = record.steps[0].apply(clean)
            denoised = restorer(degraded, prompt=f"denoise with sigma {NOISE_SIGMA:g}").image
            if sigma == BLIND_BLURS[0]:
                closer_blur.append(psnr(denoised, blurred) > psnr(denoised, clean))
                # the blur alone, a stated width swept up to the true one: sharper each step
                sharpened = [
                    psnr(restorer(blurred, prompt=f"deblur with sigma {s:g}").image, clean)
                    for s in BLUR_SWEEP
                ]
                blur_sweep.append(all(a < b for a, b in itertools.pairwise(sharpened)))
                blur_psnr.append(sharpened)
            blind = restorer(degraded, prompt="remove all degradation").image
            closer_clean[sigma].append(psnr(blind, clean) > psnr(blind, blurred))
            to_clean[sigma].append((psnr(blind, clean), psnr(denoised, clean)))
            kernel = get_op("blur").kernel(record.steps[0].params)
            oracle = np.clip(wiener_deconvolve(blurred, kernel, ORACLE_BALANCE), 0, 1)
            oracle_clean[sigma].append(psnr(oracle, clean) > psnr(oracle, blurred))
            best = spectral_oracle(degraded, clean, kernel, NOISE_SIGMA)
            spectral_clean[sigma].append(psnr(best, clean) > psnr(best, blurred))
        noisy = parse_ops("noise sigma=50", np.random.default_rng(index)).apply(clean)
        residual = [
            float(np.std(restorer(noisy, prompt=f"denoise with sigma {s}").image - clean))
            for s in (10, 20, 30, 40, 50)
        ]
        sweep.append(all(a >= b - 1e-4 for a, b in itertools.pairwise(residual)))
    rows = [
        f"- blur sigma {BLIND_BLURS[0]:g} + noise sigma {NOISE_SIGMA:g}, "
        f'"denoise with sigma {NOISE_SIGMA:g}": closer '
        f"to the blurred target than to the clean one on {np.mean(closer_blur):.0%} of "
        f"{len(paths)} images",
    ]
    for sigma in BLIND_BLURS:
        blind_psnr, denoise_psnr = np.array(to_clean[sigma]).T
        rows += [
            f"- blur sigma {sigma:g} + noise sigma {NOISE_SIGMA:g}, blind prompt: closer to "
            f"the clean image on {np.mean(closer_clean[sigma]):.0%}; nearer it than "
            f'"denoise" on {np.mean(blind_psnr > denoise_psnr + 0.01):.0%} '
            f"({np.mean(blind_psnr):.2f} against {np.mean(denoise_psnr):.2f} dB)",
            f"  (for scale: Wiener with the true kernel on the noise-free blurred photo, "
            f"balance {ORACLE_BALANCE:g}, is closer to the clean image on "
            f"{np.mean(oracle_clean[sigma]):.0%}; on the noisy photo, given the clean "
            f"photo's own spectrum too, the best linear filter on "
            f"{np.mean(spectral_clean[sigma]):.0%})",
        ]
    rows.append(
        f"- sigma-50 noise, stated sigma 10..50: residual noise decreases monotonically on "
        f"{np.mean(sweep):.0%} of images"
    )
    steps = " / ".join(f"{value:.2f}" for value in np.mean(blur_psnr, axis=0))
    rows.append(
        f"- blur sigma {BLIND_BLURS[0]:g} alone, stated sigma "
        f"{' / '.join(f'{s:g}' for s in BLUR_SWEEP)}: PSNR to the clean image rises "
        f"monotonically on {np.mean(blur_sweep):.0%} of images ({steps} dB)"
    )
    return rows


WINDOW = 256


def windowed_agreement(restorer: Restorer, noisy: np.ndarray) -> float:
    """Tiled vs untiled agreement of the same weights with windowed statistics."""
    original = restorer.model
    restorer.model = original.with_statistics(WINDOW)
    try:
        alone = {"noise_expert": False}
        return psnr(
            restorer(noisy, tile=256, **alone).image, restorer(noisy, tile=512, **alone).image
        )
    finally:
        restorer.model = original


def speed_and_memory(restorer: Restorer, model: str) -> list[str]:
    """Speed on a CBSD68 photo, tiled against untiled, and the peak memory of a 4000x3000
    photo (the process's on a CPU; on a GPU, also the most the device held at once)."""
    device = restorer.device
    clean = load_image(sorted((DATA / "CBSD68").glob("*.png"))[0]).rgb
    # noisy, so the restorer runs (a photo that reads clean and sharp is returned as it is)
    image = parse_ops("noise sigma=25", np.random.default_rng(0)).apply(clean)
    restorer(image)  # warm up
    start = time.perf_counter()
    runs = 3
    for _ in range(runs):
        restorer(image)
    seconds = (time.perf_counter() - start) / runs
    from skimage import data

    photo = data.astronaut().astype(np.float32) / 255.0  # 512x512, public domain
    noisy = parse_ops("noise sigma=25", np.random.default_rng(0)).apply(photo)
    whole = restorer(noisy, tile=512).image  # one 512-px tile: untiled
    agreement = psnr(restorer(noisy, tile=256).image, whole)  # the photo's statistics
    # the restorer's own (noise alone is the noise expert's where there is one)
    alone = {"noise_expert": False}
    restorer_whole = restorer(noisy, tile=512, **alone).image
    restorer_agreement = psnr(restorer(noisy, tile=256, **alone).image, restorer_whole)
    own = psnr(restorer(noisy, tile=256, gather=0, **alone).image, restorer_whole)
    windowed = windowed_agreement(restorer, noisy)
    code = (
        "import numpy as np, resource; from vlir.pipeline import Restorer; "
        f"r = Restorer.from_pretrained({model!r}, device={str(device)!r}); "
        "img = np.random.default_rng(0).random((3000, 4000, 3), dtype=np.float32); "
        "import time, torch; start = time.perf_counter(); r(img); "
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
        "torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0)"
    )
    peak = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    large_seconds, peak_gb, device_gb = None, None, 0.0
    if peak.returncode == 0:
        elapsed, rss, allocated = peak.stdout.strip().splitlines()[-1].split()
        large_seconds, peak_gb, device_gb = float(elapsed), int(rss) / 1e6, int(allocated) / 1e9
    where = f"{torch.get_num_threads()} threads" if device.type == "cpu" else str(device)
    on_device = f", {device_gb:.2f} GB at most on {device}" if device.type == "cuda" else ""
    return [
        f"- speed: {image.shape[0] * image.shape[1] / 1e6 / seconds:.3f} MP/s "
        f"({seconds:.2f} s for 481x321 with sigma-25 noise, analysis included, {where})",
        f"- tiled (tiles of at most 256 px) vs untiled on a 512x512 photo: {agreement:.1f} dB "
        "between them",
        f"  (the restorer where the noise expert would run: {restorer_agreement:.1f} dB; "
        f"each tile with its own statistics, gather=0: {own:.1f} dB; "
        f"with statistics_window={WINDOW}: {windowed:.1f} dB)",
        "- peak memory restoring a 4000x3000 photo: "
        + (
            f"{peak_gb:.2f} GB (max RSS){on_device}, {large_seconds:.0f} s (tiled, one "
            "gathering pass)"
            if peak_gb
            else f"failed: {peak.stderr[-300:]}"
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="restorer",
        help="checkpoint, or several comma-separated (quality rows); NAME+x8 for its "
        "self-ensemble, NAME+alone without the noise expert; control, speed and memory "
        "rows measure the first",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/restore"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--control-images", type=int, default=10)
    parser.add_argument("--bm3d", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--tasks",
        default=None,
        help="comma-separated tasks, datasets or TASK@DATASET, e.g. sr:2,sr:4 or Set5 or "
        "denoise:15@CBSD68",
    )
    parser.add_argument("--skip-control", action="store_true", help="no prompt-control rows")
    parser.add_argument("--skip-speed", action="store_true", help="no speed and memory rows")
    parser.add_argument(
        "--device", default="cpu", help="where vlir's networks run: cpu (default), cuda, auto"
    )
    args = parser.parse_args()
    first, _, alone = restorer_variant(args.model.split(",")[0])
    restorer = Restorer.from_pretrained(
        first, denoiser=None if alone else "denoiser", device=args.device
    )
    sections = [] if args.skip_quality else quality_tables(args)
    if not args.skip_control:
        control = prompt_control(restorer, args.control_images)
        sections.append("# Prompt control\n\n" + "\n".join(control))
    if not args.skip_speed:
        speed = speed_and_memory(restorer, first)
        sections.append("# Speed and memory\n\n" + "\n".join(speed))
    report = "\n\n".join(sections)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
