"""Ablations: one component switched off per variant, same budget and seed
(``vlir train --recipe ablation``).

An ablation recipe (``configs/ablation.yaml``) names a restorer recipe, the
keys every variant shares (the budget: steps, start, seed) and, per variant,
the keys it changes (``model: {use_content_block: false}``). Each variant
trains into ``OUT/VARIANT`` (resumable; a finished one returns at once), then
every variant's best is measured on the same held-out BSD400 crops, blind and
with a semantic prompt, into ``OUT/results.md``. ``benchmarks/recipes.py``
measures the same checkpoints on the benchmark sets.

``init: restorer`` starts every variant from the shipped default with its
component knocked out (``load_matching``), so a CPU budget of minutes measures
what the network loses without it; ``init: null`` trains from scratch (a GPU
budget).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlir.errors import VlirError
from vlir.training.common import recipe_from_values
from vlir.training.restorer import RestorerRecipe, evaluate, train
from vlir.training.system import find_recipe, merge_settings, read_yaml


@dataclass
class Variant:
    name: str
    changes: dict[str, Any]


@dataclass
class AblationRecipe:
    name: str
    base: Path
    shared: dict[str, Any]
    variants: list[Variant]


def is_ablation(path: Path) -> bool:
    return "variants" in read_yaml(path)


def load_ablation(name_or_path: str) -> AblationRecipe:
    path = find_recipe(name_or_path)
    raw = read_yaml(path)
    unknown = set(raw) - {"recipe", "set", "variants"}
    if unknown:
        raise VlirError(f"{path}: unknown key {sorted(unknown)[0]!r} (recipe, set, variants)")
    if not raw.get("recipe") or not isinstance(raw.get("variants"), dict):
        raise VlirError(f"{path}: an ablation recipe needs 'recipe' and a 'variants' mapping")
    variants = [Variant(name, dict(spec or {})) for name, spec in raw["variants"].items()]
    return AblationRecipe(
        path.stem, path.parent / raw["recipe"], dict(raw.get("set") or {}), variants
    )


def variant_recipe(
    ablation: AblationRecipe, variant: Variant, out: Path, extra: Mapping[str, Any]
) -> RestorerRecipe:
    """The base recipe, then the shared keys, the command line's, then the variant's."""
    values = read_yaml(ablation.base)
    for layer in (ablation.shared, extra, variant.changes):
        values = merge_settings(values, layer)
    values["out"] = str(out / variant.name)
    return recipe_from_values(RestorerRecipe, values)


def _describe(changes: Mapping[str, Any]) -> str:
    flat = []
    for key, value in changes.items():
        if isinstance(value, dict):
            flat += [f"{key}.{k}={v}" for k, v in value.items()]
        else:
            flat.append(f"{key}={value}")
    return ", ".join(flat) or "(nothing switched off)"


def run_ablation(
    name_or_path: str,
    out: str | None = None,
    settings: Mapping[str, Any] | None = None,
    only: str | None = None,
) -> Path:
    """Train every variant (or ``only`` one), then measure them all; returns the table."""
    ablation = load_ablation(name_or_path)
    root = Path(out or f"runs/{ablation.name}")
    names = [v.name for v in ablation.variants]
    if only is not None and only not in names:
        raise VlirError(f"{ablation.name} has no variant {only!r} (variants: {', '.join(names)})")
    recipes = {v.name: variant_recipe(ablation, v, root, settings or {}) for v in ablation.variants}
    for variant in ablation.variants:
        if only is None or variant.name == only:
            print(f"[{ablation.name}] {variant.name}: training into {recipes[variant.name].out}")
            train(recipes[variant.name])
    rows = [
        "| variant | switched off | steps | val PSNR blind | val PSNR + semantic prompt |",
        "|---|---|---|---|---|",
    ]
    input_psnr = None
    for variant in ablation.variants:
        recipe = recipes[variant.name]
        best = Path(recipe.out) / "best"
        if not best.exists():
            rows.append(f"| {variant.name} | {_describe(variant.changes)} | not trained | | |")
            continue
        scores = evaluate(str(best), recipe)
        input_psnr = scores["val/psnr_input"]
        rows.append(
            f"| {variant.name} | {_describe(variant.changes)} | {recipe.steps} "
            f"| {scores['val/psnr_blind']:.2f} | {scores['val/psnr_semantic']:.2f} |"
        )
        print(rows[-1], flush=True)
    shared = _describe(merge_settings(ablation.shared, settings or {}))
    inputs = "" if input_psnr is None else f" (input: {input_psnr:.2f} dB)"
    table = root / "results.md"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(
        f"# {ablation.name}\n\nEvery variant: {shared}. Measured on 128 held-out BSD400 "
        f"crops with random 1-3 op degradations, fixed seed{inputs}; the semantic prompt "
        'is written about the damaged photo ("a noisy photo of ...").\n\n' + "\n".join(rows) + "\n"
    )
    print(table.read_text(), flush=True)
    return table
