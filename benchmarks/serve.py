"""What ``vlir serve`` adds to a restoration, and that it returns the command line's file.

The README's example (the astronaut with Gaussian blur sigma 2 and sigma-30 noise),
resized to each of ``--sizes``, restored automatically three ways, median of
``--repeats`` seconds each (after one warm-up):

- in process: ``Restorer.__call__`` on the pixels;
- the service: ``vlir.serve.Service.restore`` on the file (load, restore, write the
  PNG, make the before/after previews);
- the page: ``vlir serve`` started as a user starts it, called over HTTP with
  ``gradio_client`` (upload, queue, restore, previews and file sent back).

Then the file the page returned against ``vlir restore`` run on the same file (the
largest difference in 8-bit steps; 0 is the same file).

    python benchmarks/serve.py [--model restorer] [--sizes 512x512,1536x1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
from skimage import data
from skimage.transform import resize

from vlir.degradations import parse_ops
from vlir.io import load_image, save_image
from vlir.pipeline import Restorer
from vlir.serve import Service

README_OPS = "blur sigma=2, noise sigma=30"


def timed(work: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one to warm up."""
    work()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_page(model: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "vlir.cli", "serve", "--model", model, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return server
        except OSError:
            if server.poll() is not None:
                sys.exit(f"vlir serve exited with {server.returncode}")
            time.sleep(0.5)
    server.kill()
    sys.exit("vlir serve did not answer in 2 minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="restorer")
    parser.add_argument("--sizes", default="512x512,1536x1024", help="WIDTHxHEIGHT,...")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    restorer = Restorer.from_pretrained(args.model)
    folder = Path(tempfile.mkdtemp(prefix="vlir-serve-bench-"))
    service = Service(restorer, folder / "service")
    port = free_port()
    server = start_page(args.model, port)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(folder / "got"))
    print(f"{args.model}, automatic, {README_OPS}; median of {args.repeats} after a warm-up\n")
    print("| size | in process (s) | service (s) | page over HTTP (s) | page vs CLI file |")
    print("|---|---:|---:|---:|---:|")
    try:
        for size in args.sizes.split(","):
            width, height = (int(side) for side in size.split("x"))
            clean = resize(data.astronaut(), (height, width), order=3, anti_aliasing=True)
            degraded = np.clip(parse_ops(README_OPS, np.random.default_rng(0)).apply(clean), 0, 1)
            path = save_image(folder / f"example_{size}.png", degraded.astype(np.float32))
            pixels = load_image(path).rgb
            direct = timed(lambda pixels=pixels: restorer(pixels), args.repeats)
            served = timed(lambda path=path: service.restore(str(path)), args.repeats)
            answers: list[tuple] = []

            def over_http(path: Path = path, answers: list[tuple] = answers) -> None:
                call = (handle_file(str(path)), "", "", None, 1.0, False, False, 0)
                answers.append(client.predict(*call, api_name="/restore"))

            page = timed(over_http, args.repeats)
            cli_file = folder / f"cli_{size}.png"
            subprocess.run(
                [sys.executable, "-m", "vlir.cli", "restore", str(path), "-o", str(cli_file)],
                check=True,
                capture_output=True,
            )
            steps = np.abs(load_image(answers[-1][1]).rgb - load_image(cli_file).rgb).max() * 255
            print(f"| {size} | {direct:.2f} | {served:.2f} | {page:.2f} | {steps:.0f} steps |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
