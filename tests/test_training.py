"""What every trainer shares: the weight average (``vlir.training.ema``) and the recipes
under ``configs/``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from torch import nn

from vlir.errors import VlirError
from vlir.modeling import WEIGHTS_DIR
from vlir.training.common import load_recipe
from vlir.training.ema import WeightAverage, resume_average
from vlir.training.system import is_system

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_average_moves_by_the_warmed_up_decay_and_copies_counters() -> None:
    model = _model()
    average = WeightAverage(model, decay=0.99)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()(torch.randn(8, 3))  # moves the BatchNorm counter to 1
    average.update(model)
    # first update: decay min(0.99, 2/11), so the average goes 9/11 of the way
    expected = start + (1.0 - 2 / 11)
    assert torch.allclose(average.model[0].weight, expected, atol=1e-6)
    assert int(average.model[1].num_batches_tracked) == 1
    for _ in range(2000):
        average.update(model)
    assert average.decay == 0.99 and torch.allclose(average.model[0].weight, model[0].weight)
    assert not any(p.requires_grad for p in average.model.parameters())


def test_average_resumes_and_refuses_a_bad_decay() -> None:
    model = _model()
    assert resume_average(model, 0.0, None) is None
    average = resume_average(model, 0.9, None)
    with torch.no_grad():
        model[0].bias.add_(3.0)
    average.update(model)
    resumed = resume_average(_model(), 0.9, {"ema": average.state_dict()})
    assert resumed.updates == 1
    assert torch.equal(resumed.model[0].bias, average.model[0].bias)
    # a run resumed with ema newly set starts the average from the weights it resumed
    fresh = resume_average(model, 0.9, {"model": model.state_dict()})
    assert torch.equal(fresh.model[0].bias, model[0].bias)
    with pytest.raises(VlirError, match="decay"):
        WeightAverage(model, 1.0)


def stage_recipes() -> list[Path]:
    """The one-trainer recipes (``restorer-gpu.yaml`` is the restorer's); system recipes
    (with ``stages``) and the ablation grid are tested with their runners."""
    return [
        path
        for path in sorted(CONFIGS.glob("*.yaml"))
        if path.stem != "ablation" and not is_system(path)
    ]


@pytest.mark.parametrize("path", stage_recipes(), ids=lambda path: path.stem)
def test_stage_recipes_load_and_name_shipped_weights(path: Path) -> None:
    # A lent GPU's minutes are few: a recipe with a misspelt key or a weight folder that was
    # renamed must fail here, not on the machine.
    trainer = path.stem.split("-")[0]
    module = importlib.import_module(f"vlir.training.{trainer}")
    recipe = load_recipe(getattr(module, f"{trainer.capitalize()}Recipe"), path, {})
    for key in ("init", "perception"):
        name = getattr(recipe, key, None)
        if name and "/" not in str(name):
            assert (WEIGHTS_DIR / name / "config.json").exists(), f"{key}: {name}"
