"""How fast the pipeline restores on a CPU or a GPU, and the most memory it holds.

Each size is scikit-image's astronaut resized, with sigma-25 noise (so the restorer
runs: a photo that reads clean is returned as it is), restored in automatic mode with
the pipeline's defaults (analysis included; tiles above 512x512, one gathering pass).
Every size runs in a fresh process, so its peak memory is its own: the process's
largest resident set, and on a GPU the most the device held (``torch.cuda``'s peak
allocation). Seconds are the median of ``--repeats`` calls after a warm-up.

    python benchmarks/speed.py [--device cpu|cuda|auto] [--sizes 481x321,1024x1024,4000x3000]
        [--repeats 3] [--model restorer]

Needs no shared data, so it runs as it is on a lent GPU machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from skimage import data
from skimage.transform import resize

from vlir.degradations import parse_ops
from vlir.errors import VlirError
from vlir.modeling import resolve_device
from vlir.pipeline import Restorer


def noisy_photo(width: int, height: int) -> np.ndarray:
    """The astronaut at ``width`` x ``height`` with sigma-25 noise, [H, W, 3] float32."""
    photo = resize(data.astronaut(), (height, width), anti_aliasing=True).astype(np.float32)
    return parse_ops("noise sigma=25", np.random.default_rng(0)).apply(photo)


def measure(model: str, device: str, size: tuple[int, int], repeats: int) -> dict:
    """One size in this process: seconds per restoration and the peaks."""
    restorer = Restorer.from_pretrained(model, device=device)
    restorer(noisy_photo(256, 256))  # warm up (kernels chosen, caches filled)
    image = noisy_photo(*size)
    cuda = restorer.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(restorer.device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = restorer(image)  # (its numpy image: the device's work is finished)
        seconds.append(time.perf_counter() - start)
    return {
        "seconds": statistics.median(seconds),
        "prompt": result.prompt,
        "tiles": result.tiles,
        "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "device_gb": torch.cuda.max_memory_allocated(restorer.device) / 1e9 if cuda else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--sizes", default="481x321,1024x1024,4000x3000", help="WxH,...")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child's size
    args = parser.parse_args()
    if args.one:
        size = tuple(int(side) for side in args.one.split("x"))
        print(json.dumps(measure(args.model, args.device, size, args.repeats)))
        return
    try:
        device = resolve_device(args.device)
    except VlirError as exc:
        sys.exit(f"speed.py: {exc}")
    where = (
        f"{torch.cuda.get_device_name(device)} ({device})"
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"{args.model} on {where}, median of {args.repeats} after a warm-up\n")
    print("| size | seconds | MP/s | tiled | peak RSS (GB) | peak on device (GB) |")
    print("|---|---:|---:|---|---:|---:|")
    for text in args.sizes.split(","):
        width, height = (int(side) for side in text.split("x"))
        command = [sys.executable, __file__, "--model", args.model, "--device", str(device)]
        child = subprocess.run(
            [*command, "--repeats", str(args.repeats), "--one", text],
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            print(f"| {text} | failed: {child.stderr.strip().splitlines()[-1:]} |||||")
            continue
        row = json.loads(child.stdout.strip().splitlines()[-1])
        on_device = "" if row["device_gb"] is None else f"{row['device_gb']:.2f}"
        print(
            f"| {text} | {row['seconds']:.2f} | {width * height / 1e6 / row['seconds']:.3f} | "
            f"{'yes' if row['tiles'] else 'no'} | {row['rss_gb']:.2f} | {on_device} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
