"""A seed system as a recipe of stages (``vlir train --recipe vlmir``).

A system recipe (``configs/vlmir.yaml``, ``lmdir.yaml``, ``spire.yaml``) lists
stages in the order they train. Each names its trainer (``perception``,
``restorer``, ``prior`` or ``refiner``; the stage's name by default), that
trainer's own recipe (a path relative to the system recipe) and the keys it
changes. A value ``"{stage}"`` is the checkpoint an earlier stage made, so
stage 2 is wired to stage 1's output::

    stages:
      perception: {recipe: perception.yaml}
      diffusion:
        trainer: refiner
        recipe: refiner.yaml
        set: {perception: "{perception}", restorer: null}

Stage ``S`` writes ``OUT/S`` (resumable like any run: a finished stage returns
at once). ``uses`` puts an existing checkpoint in place of a stage (the shipped
perception, say), and ``settings`` change any stage's key (``S.KEY``).
The last stage's ``best`` is the system's model: ``vlir restore --model OUT/S/best``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlir.errors import VlirError
from vlir.training.common import recipe_from_values

TRAINERS = ("perception", "restorer", "prior", "refiner")
CONFIGS_DIR = Path("configs")


@dataclass
class Stage:
    name: str
    trainer: str
    recipe: Path | None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class SystemRecipe:
    name: str
    path: Path
    stages: list[Stage]


def find_recipe(name_or_path: str) -> Path:
    """``vlmir`` -> ``configs/vlmir.yaml``; a path is taken as it is."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise VlirError(f"{path}: no such recipe")
        return path
    candidate = CONFIGS_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        known = sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml") if is_system(p))
        raise VlirError(
            f"no recipe {name_or_path!r} in {CONFIGS_DIR}/ (run from the project root; "
            f"systems: {', '.join(known) or 'none found'})"
        )
    return candidate


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise VlirError(f"{path}: a recipe is a YAML mapping")
    return loaded


def is_system(path: Path) -> bool:
    """Whether a YAML file is a system recipe (it has ``stages``), not a stage's recipe."""
    try:
        return "stages" in read_yaml(path)
    except Exception:  # an unreadable file is not a system; find_recipe says why later
        return False


def load_system(name_or_path: str) -> SystemRecipe:
    path = find_recipe(name_or_path)
    raw = read_yaml(path)
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, dict) or not stages_raw:
        raise VlirError(f"{path}: a system recipe needs a 'stages' mapping (see configs/)")
    stages = []
    for name, spec in stages_raw.items():
        spec = spec or {}
        unknown = set(spec) - {"trainer", "recipe", "set"}
        if unknown:
            raise VlirError(f"{path}: stage {name!r}: unknown key {sorted(unknown)[0]!r}")
        trainer = spec.get("trainer", name)
        if trainer not in TRAINERS:
            raise VlirError(f"{path}: stage {name!r}: trainer must be one of {TRAINERS}")
        recipe = path.parent / spec["recipe"] if spec.get("recipe") else None
        stages.append(Stage(name, trainer, recipe, dict(spec.get("set") or {})))
    return SystemRecipe(path.stem, path, stages)


def split_settings(settings: Mapping[str, Any], stages: list[Stage]) -> dict[str, dict[str, Any]]:
    """``{"restorer.steps": 900}`` -> ``{"restorer": {"steps": 900}}``."""
    names = {stage.name for stage in stages}
    split: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in settings.items():
        stage, dot, rest = key.partition(".")
        if not dot or stage not in names:
            raise VlirError(f"--set {key}: expected STAGE.KEY with STAGE one of {sorted(names)}")
        split[stage][rest] = value
    return split


def merge_settings(values: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """``layer`` over ``values``; a mapping merges into a mapping (``model: {...}``) and a
    dotted key reaches into one (``model.sigma0``)."""
    nested: dict[str, Any] = {}
    for key, value in layer.items():
        head, dot, rest = key.partition(".")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            nested[key] = value
    merged = dict(values)
    for key, value in nested.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _substitute(value: Any, outputs: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        stage = value[1:-1]
        if stage not in outputs:
            raise VlirError(f"{value}: no earlier stage of that name")
        return outputs[stage]
    if isinstance(value, dict):
        return {k: _substitute(v, outputs) for k, v in value.items()}
    return value


def stage_recipe(stage: Stage, out: Path, outputs: Mapping[str, str], extra: dict[str, Any]):
    """The trainer's recipe object for ``stage``: its YAML, then the system's keys, then
    the command line's, with ``{stage}`` references resolved."""
    module = importlib.import_module(f"vlir.training.{stage.trainer}")
    recipe_class = getattr(module, f"{stage.trainer.capitalize()}Recipe")
    base = read_yaml(stage.recipe) if stage.recipe is not None else {}
    values = {**base, "out": str(out / stage.name)}
    for layer in (stage.settings, extra):
        values = merge_settings(values, _substitute(layer, outputs))
    return module, recipe_from_values(recipe_class, values)


def train_system(
    name_or_path: str,
    out: str | None = None,
    uses: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    only: str | None = None,
) -> str:
    """Train every stage in order (or ``only`` one); returns the system's model folder."""
    system = load_system(name_or_path)
    root = Path(out or f"runs/{system.name}")
    uses = dict(uses or {})
    names = [stage.name for stage in system.stages]
    for name in [*uses, *([only] if only else [])]:
        if name not in names:
            raise VlirError(f"{system.name} has no stage {name!r} (stages: {', '.join(names)})")
    extra = split_settings(settings or {}, system.stages)
    outputs: dict[str, str] = {}
    for stage in system.stages:
        if stage.name in uses:
            outputs[stage.name] = uses[stage.name]
            print(f"[{system.name}] {stage.name}: using {uses[stage.name]}", flush=True)
            continue
        module, recipe = stage_recipe(stage, root, outputs, extra[stage.name])
        best = Path(recipe.out) / "best"
        if only is None or only == stage.name:
            print(f"[{system.name}] {stage.name}: training into {recipe.out}", flush=True)
            best = Path(module.train(recipe))
        outputs[stage.name] = str(best)
    model = outputs[system.stages[-1].name]
    print(f"[{system.name}] model: {model}  (vlir restore --model {model})", flush=True)
    return model
