"""Where a restorer training step's time goes on this machine, phase by phase.

    python scripts/device/profile_step.py --set data=... --set captions=...

Prints the median milliseconds of: waiting for data, the text tower, perception,
the restorer's forward, backward and optimiser step, with the main process's
intra-op thread count as found and as set by ``--threads``. The text tower is
the training one, which caches sentences it has encoded. The first third of the
steps (warm-up) is left out of the medians.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from vlir.data import CleanImages, DegradedSampler, load_captions
from vlir.degradations import DegradationPipeline
from vlir.restoration import RestorerConfig, RestorerModel, make_conditioning
from vlir.training.common import batch_stream, load_recipe, parse_settings
from vlir.training.restorer import Encoders, RestorerRecipe, TrainingBatches, frequency_l1


def profile(recipe: RestorerRecipe, steps: int) -> dict[str, float]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = RestorerConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.model.items()}
    )
    model = RestorerModel(config).to(device)
    encoders = Encoders(config.perception, config.text_encoder, device)
    images = CleanImages(recipe.data, None, load_captions(recipe.captions))
    sampler = DegradedSampler(
        images, DegradationPipeline(max_ops=recipe.max_ops), crop=(recipe.crop, recipe.crop)
    )
    stream = batch_stream(TrainingBatches(sampler, recipe, 0, 0), recipe.workers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=recipe.amp and device.type == "cuda"
    )
    times: dict[str, list[float]] = {}

    def mark(name: str, start: float) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.setdefault(name, []).append(1000 * (now - start))
        return now

    for index in range(steps):
        if index == steps // 3:
            times.clear()
        t = time.perf_counter()
        batch = next(stream)
        degraded = batch.degraded.to(device)
        target = batch.target.to(device)
        t = mark("data", t)
        with torch.no_grad(), autocast:
            prompt = encoders.text(batch.prompts)
            t = mark("text", t)
            perceived = encoders.perception(degraded)
            t = mark("perception", t)
        condition = make_conditioning(perceived, prompt)
        with autocast:
            output = model(degraded, condition).float()
        loss = F.l1_loss(output, target) + 0.05 * frequency_l1(output, target)
        t = mark("forward", t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t = mark("backward", t)
        optimizer.step()
        mark("optimizer", t)
    return {name: float(np.median(values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="configs/restorer-gpu.yaml")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--steps", type=int, default=45)
    parser.add_argument("--threads", type=int, nargs="*", default=[0, 2])
    args = parser.parse_args()
    recipe = load_recipe(RestorerRecipe, args.recipe, parse_settings(args.set))
    found = torch.get_num_threads()
    for threads in args.threads:
        torch.set_num_threads(threads or found)
        row = profile(recipe, args.steps)
        cells = "  ".join(f"{k} {v:.1f}" for k, v in row.items())
        print(f"threads {threads or found}: {cells}  total {sum(row.values()):.1f} ms", flush=True)


if __name__ == "__main__":
    main()
