"""The ``vlir`` command line.

Every command takes files, folders and globs, shows a progress bar for many
files, and reports a bad file as one line (``vlir: error: ...``) instead of a
traceback; a batch goes on past a bad file and exits non-zero at the end.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub lookup stalls ~46 s offline

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vlir import __version__
from vlir.errors import VlirError
from vlir.io import (
    DEFAULT_MAX_PIXELS,
    Image,
    check_writable,
    expand_inputs,
    load_image,
    plan_outputs,
    save_image,
    write_atomic,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Vision-language guided, all-in-one image restoration.",
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

MaxPixels = Annotated[
    int, typer.Option("--max-pixels", help="Refuse images with more pixels (bomb guard).")
]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace existing files, inputs included.")
]
RestoringModel = Annotated[
    str,
    typer.Option(
        "--model",
        help="restorer (default), lmdir, vlmir, spire (configs/), or a checkpoint folder.",
    ),
]
RefinerName = Annotated[
    str, typer.Option("--refiner", help="Refiner: shipped name or checkpoint folder.")
]
Device = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the networks run: auto (a CUDA GPU where torch sees one, else the CPU), "
        "cpu, cuda or cuda:N.",
    ),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"vlir {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Vision-language guided, all-in-one image restoration."""


def _each(items: Sequence[tuple[Path, Path]], verb: str) -> Iterator[tuple[Path, Path]]:
    """Yield work items, with a progress bar on stderr when there are several."""
    if len(items) == 1:
        yield from items
        return
    columns = (TextColumn(f"{verb}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(verb, total=len(items))
        for item in items:
            yield item
            progress.advance(task)


@contextmanager
def _pass_bar(show: bool, name: str) -> Iterator[Callable[[int, int], None] | None]:
    """A bar over one photo's network passes (tiles, views, refinement), for the
    ``progress`` of ``Restorer.__call__``: a large photo takes minutes on a CPU. Several
    photos already have a bar over the photos (``_each``), and rich shows one at a time."""
    if not show:
        yield None
        return
    columns = (TextColumn(name), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(name, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _run_batch(
    pairs: Sequence[tuple[Path, Path]], verb: str, work: Callable[[Path, Path, int], None]
) -> int:
    """Run ``work`` on every pair; one line per failure, the count of failures returned."""
    failures = 0
    for index, (src, dst) in enumerate(_each(pairs, verb)):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                work(src, dst, index)
            for warning in caught:
                err.print(f"vlir: warning: {src}: {warning.message}", markup=False, highlight=False)
        except VlirError as exc:
            failures += 1
            line = exc.one_line()
            line = line if line.startswith(str(src)) else f"{src}: {line}"
            err.print(f"vlir: error: {line}", markup=False, highlight=False)
    return failures


@app.command()
def degrade(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders or globs.")],
    output: Annotated[str, typer.Option("-o", "--output", help="Output file, or folder.")],
    ops: Annotated[
        str | None,
        typer.Option("--ops", help='Ops in order, e.g. "noise sigma=25, jpeg quality=30".'),
    ] = None,
    random: Annotated[
        bool, typer.Option("--random", help="Draw a random mixture of 1..--max-ops ops.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for everything random.")] = 0,
    max_ops: Annotated[int, typer.Option("--max-ops", help="Most ops in a random mix.")] = 3,
    record: Annotated[
        str | None,
        typer.Option("--record", help="Write the DegradationRecord JSON (a folder for many)."),
    ] = None,
    overwrite: Overwrite = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Synthesise degradations; print the restoration prompt that undoes them."""
    from vlir.degradations import DegradationPipeline, parse_ops

    if (ops is None) == (not random):
        raise VlirError("give exactly one of --ops SPEC or --random")
    pairs = plan_outputs(expand_inputs(inputs), output, overwrite=overwrite)
    if ops is not None:
        parse_ops(ops, np.random.default_rng(seed))  # report a bad spec before any file
    pipeline = DegradationPipeline(max_ops=max_ops) if random else None
    record_paths = _record_paths(pairs, record)

    def work(src: Path, dst: Path, index: int) -> None:
        image = load_image(src, max_pixels=max_pixels)
        rng = np.random.default_rng([seed, index])
        sample = pipeline.sample(rng) if pipeline is not None else parse_ops(ops or "", rng)
        degraded = image.with_rgb(sample.apply(image.rgb))
        if record_paths is not None:
            check_writable(record_paths[index], overwrite=overwrite)
        save_image(dst, degraded, overwrite=overwrite)
        if record_paths is not None:
            record_paths[index].parent.mkdir(parents=True, exist_ok=True)
            payload = (sample.to_json() + "\n").encode()
            write_atomic(record_paths[index], payload, overwrite=overwrite)
        out.print(f"{dst}: {sample.prompt().format()}", markup=False, highlight=False)

    failures = _run_batch(pairs, "degrading", work)
    if failures:
        raise typer.Exit(1)


def _record_paths(pairs: Sequence[tuple[Path, Path]], record: str | None) -> list[Path] | None:
    if record is None:
        return None
    target = Path(record)
    if len(pairs) == 1 and target.suffix.lower() == ".json":
        return [target]
    if target.exists() and not target.is_dir():
        raise VlirError(f"{target}: several inputs need a --record folder, not a file")
    return [target / f"{dst.stem}.json" for _, dst in pairs]


@app.command(name="eval")
def evaluate(
    task: Annotated[
        str, typer.Option("--task", help="denoise:25, jpeg-y:10, jpeg:10, sr:4, rain, blur+noise")
    ],
    data: Annotated[str, typer.Option("--data", help="Benchmark folder (e.g. .../CBSD68).")],
    out_dir: Annotated[str, typer.Option("-o", "--out", help="Folder for tables and sheets.")],
    method: Annotated[
        list[str] | None, typer.Option("--method", "-m", help="A method name (repeatable).")
    ] = None,
    baselines: Annotated[
        bool, typer.Option("--baselines", help="Add every classical baseline meant for the task.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the degraded inputs.")] = 0,
    limit: Annotated[int | None, typer.Option("--limit", help="Use the first N images.")] = None,
    no_reference: Annotated[
        bool, typer.Option("--nr", help="Also compute NIQE and BRISQUE (slower).")
    ] = False,
    sheet: Annotated[int, typer.Option("--sheet", help="Images on the comparison sheet.")] = 4,
    cache: Annotated[
        str | None, typer.Option("--cache", help="Where degraded inputs are cached.")
    ] = None,
    device: Device = "auto",
) -> None:
    """Benchmark methods on a dataset: Markdown/CSV tables, per-image CSV, comparison sheet."""
    from vlir.evaluation import baselines_for, get_method, parse_task, run_benchmark
    from vlir.evaluation.report import write_sheet, write_tables
    from vlir.evaluation.tasks import dataset_images

    parsed = parse_task(task)
    names = list(
        dict.fromkeys((method or []) + (baselines_for(parsed.degradations) if baselines else []))
    )
    if not names:
        raise VlirError("give at least one --method, or --baselines")
    methods = [get_method(name, device=device) for name in names]
    dataset = Path(data)
    total = len(dataset_images(dataset)[:limit]) * len(methods)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        bar = progress.add_task(f"eval {parsed.name}", total=total)
        result = run_benchmark(
            parsed,
            dataset,
            methods,
            Path(out_dir),
            seed=seed,
            limit=limit,
            cache=Path(cache) if cache else None,
            no_reference=no_reference,
            on_step=lambda m, image: progress.update(bar, advance=1, description=f"{m} {image}"),
        )
    table = write_tables(result)
    if sheet > 0:
        write_sheet(result, sheet, Path(cache) if cache else None)
    out.print(table.read_text(), markup=False, highlight=False)


@app.command()
def restore(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders or globs.")],
    output: Annotated[str, typer.Option("-o", "--output", help="Output file, or folder.")],
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt", help='What to do, e.g. "denoise; keep the blur". Default: automatic.'
        ),
    ] = None,
    semantic: Annotated[
        str | None, typer.Option("--semantic", help='What the photo shows, e.g. "a cat".')
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Another photo of the same subject (none: the reference block is skipped).",
        ),
    ] = None,
    strength: Annotated[
        float, typer.Option("--strength", help="0 keeps the input, 1 full restoration.")
    ] = 1.0,
    tile: Annotated[
        int | None,
        typer.Option(
            "--tile",
            help="Largest tile side in pixels; tiles are cut only as long as covering the "
            "photo takes (default: automatic, 384 above 512x512).",
        ),
    ] = None,
    gather: Annotated[
        int,
        typer.Option(
            "--gather",
            help="Tiled: passes that first gather the whole photo's statistics, so tiles "
            "restore as the untiled photo would (0: each tile its own, faster).",
        ),
    ] = 1,
    deconvolve: Annotated[
        bool,
        typer.Option(
            "--deconvolve/--no-deconvolve",
            help="Where blur (motion, defocus, Gaussian) is all there is to remove, estimate "
            "its kernel and divide it out (default); --no-deconvolve leaves it to the restorer.",
        ),
    ] = True,
    noise_expert: Annotated[
        bool,
        typer.Option(
            "--noise-expert/--no-noise-expert",
            help="Where white noise is all there is to remove, restore it with the noise "
            "expert at the stated or read sigma (default); --no-noise-expert: the restorer.",
        ),
    ] = True,
    align_grid: Annotated[
        bool,
        typer.Option(
            "--align-grid/--no-align-grid",
            help="Where a JPEG's 8x8 grid does not start at the photo's corner (a cropped "
            "JPEG) and JPEG is removed, move it there for restoring (default); "
            "--no-align-grid restores as framed.",
        ),
    ] = True,
    ensemble: Annotated[
        bool,
        typer.Option(
            "--ensemble",
            help="Restore the 8 flips and quarter turns and average them (a little better, "
            "8 times slower; where JPEG is removed, the 4 upright flips).",
        ),
    ] = False,
    model: RestoringModel = "restorer",
    refine: Annotated[
        bool, typer.Option("--refine", help="Then refine with the diffusion prior (slower).")
    ] = False,
    steps: Annotated[
        int | None,
        typer.Option("--steps", help="Diffusion steps (--refine: 1; vlmir/spire: their own)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Refinement noise seed (with --refine).")] = 0,
    refiner: RefinerName = "refiner",
    device: Device = "auto",
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the reports as JSON (one array, after the last photo) instead of "
            "a line per photo.",
        ),
    ] = False,
    overwrite: Overwrite = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Restore photos: automatic by default, or guided by --prompt, --semantic, --reference.

    Automatic: perception says what is wrong and the restorer removes it; a photo where
    nothing is found and that reads sharp is written as it is. --refine adds diffusion
    refinement (deterministic for a given --seed)."""
    from vlir.pipeline import Restorer

    if not 0.0 <= strength <= 2.0:
        raise VlirError(f"--strength must be between 0 and 2, got {strength}")
    if tile is not None and tile < 64:
        raise VlirError(f"--tile must be at least 64 pixels, got {tile}")
    if not 0 <= gather <= 4:
        raise VlirError(f"--gather must be between 0 and 4, got {gather}")
    if steps is not None and not 1 <= steps <= 1000:
        raise VlirError(f"--steps must be between 1 and 1000, got {steps}")
    pairs = plan_outputs(expand_inputs(inputs), output, overwrite=overwrite)
    reference_rgb = load_image(reference, max_pixels=max_pixels).rgb if reference else None
    restorer = Restorer.from_pretrained(model, refiner=refiner, device=device)
    if refine:
        restorer.load_refiner()  # a bad --refiner fails before any work is done
    if ensemble and restorer.model is None:
        raise VlirError(f"--ensemble: {model} is a diffusion restorer, which samples instead")

    def work(src: Path, dst: Path, index: int) -> None:
        image = load_image(src, max_pixels=max_pixels)
        check_writable(dst, overwrite=overwrite)
        with _pass_bar(len(pairs) == 1, f"restoring {src.name}") as on_pass:
            result = restorer(
                image.rgb,
                prompt=prompt,
                semantic=semantic,
                reference=reference_rgb,
                strength=strength,
                tile=tile,
                gather=gather,
                refine=refine,
                steps=steps,
                seed=seed,
                deconvolve=deconvolve,
                ensemble=ensemble,
                align_grid=align_grid,
                noise_expert=noise_expert,
                progress=on_pass,
            )
        save_image(dst, image.with_rgb(result.image), overwrite=overwrite)
        if as_json:
            where = {"input": str(src), "output": str(dst), "device": str(restorer.device)}
            reports.append(where | result.to_dict())
        else:
            out.print(f"{dst}: {result.report()}", markup=False, highlight=False)

    reports: list[dict] = []
    failures = _run_batch(pairs, "restoring", work)
    if as_json:
        out.print(json.dumps(reports, indent=2), markup=False, highlight=False)
    if failures:
        raise typer.Exit(1)


@app.command()
def analyze(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders or globs.")],
    model: Annotated[
        str, typer.Option("--model", help="Shipped name or checkpoint folder.")
    ] = "perception",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    device: Device = "auto",
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Say what is wrong with each photo, how strongly, and the prompt that would fix it."""
    import torch
    from rich.table import Table

    from vlir.modeling import resolve_device
    from vlir.perception import PerceptionModel
    from vlir.perception import analyze as run_analysis

    paths = expand_inputs(inputs)
    target = resolve_device(device)
    perception = PerceptionModel.from_pretrained(model).to(target)
    reports, failures = [], 0
    for path in paths:
        try:
            image = load_image(path, max_pixels=max_pixels)
        except VlirError as exc:
            failures += 1
            err.print(f"vlir: error: {exc.one_line()}", markup=False, highlight=False)
            continue
        with torch.inference_mode():
            result = run_analysis(perception, image.to_tensor().to(target))
        if as_json:
            reports.append({"image": str(path), **result.to_dict()})
            continue
        table = Table(title=str(path), title_justify="left")
        for column in ("degradation", "probability", "strength"):
            table.add_column(column)
        for finding in result.shown:
            style = "bold" if finding.present else "dim"
            table.add_row(
                finding.op,
                f"{finding.probability:.2f}",
                f"{finding.parameter} {finding.strength:g}",
                style=style,
            )
        if not result.found:
            table.add_row("(nothing found)", "", "")
        out.print(table)
        out.print(f"prompt: {result.prompt.format()}", markup=False, highlight=False)
        if result.note:
            out.print(f"note: {result.note}: these findings are guesses", markup=False)
    if as_json:
        out.print(json.dumps(reports, indent=2), markup=False, highlight=False)
    if failures:
        raise typer.Exit(1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def serve(
    model: RestoringModel = "restorer",
    refiner: RefinerName = "refiner",
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on (0.0.0.0: reachable from other machines)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port (default: 7860, or the next free one)."),
    ] = None,
    browser: Annotated[
        bool, typer.Option("--browser", help="Open the page in a browser once it is up.")
    ] = False,
    device: Device = "auto",
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Restore photos in a web page on this machine (needs Gradio: pip install gradio).

    Analyse a photo, edit the prompt, restore, download; the serve extra installs Gradio."""
    import tempfile

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no phoning home
    try:
        import gradio  # noqa: F401 (seconds to import: only checked here, used by build_app)
    except ImportError:
        raise VlirError("vlir serve needs Gradio", hint="pip install 'vlir[serve]'") from None
    if port is not None and not 1 <= port <= 65535:
        raise VlirError(f"--port must be between 1 and 65535, got {port}")
    from vlir.pipeline import Restorer
    from vlir.serve import Service, build_app, upload_limit, write_examples

    restorer = Restorer.from_pretrained(model, refiner=refiner, device=device)
    with tempfile.TemporaryDirectory(prefix="vlir-serve-") as workdir:
        service = Service(restorer, Path(workdir) / "results", max_pixels=max_pixels)
        examples = write_examples(Path(workdir) / "examples")
        page = build_app(service, examples=examples)
        try:
            page.queue().launch(
                server_name=host,
                server_port=port,
                inbrowser=browser,
                share=False,
                allowed_paths=[workdir],
                max_file_size=upload_limit(max_pixels),
                prevent_thread_lock=True,
                quiet=True,
            )
        except OSError as exc:  # the port is taken, or the address is not this machine's
            where = f"{host}:{port or 7860}"
            if "empty port" in str(exc):
                raise VlirError(f"{where} is taken", hint="give another --port") from None
            raise VlirError(f"cannot serve on {where} ({exc})") from None
        out.print(f"vlir serve: {model} at {page.local_url} (Ctrl+C stops)", markup=False)
        signal.signal(signal.SIGTERM, _interrupt)  # stopped by a service manager: the same
        page.block_thread()  # (until Ctrl+C, which closes the server; then the files go)


train_app = typer.Typer(
    help="Train a seed system (--recipe vlmir|lmdir|spire) or one stage (vlir train STAGE)."
)
app.add_typer(train_app, name="train")


@train_app.callback(invoke_without_command=True)
def _train_system(
    context: typer.Context,
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe", help="vlmir, lmdir, spire, ablation (configs/NAME.yaml), or a YAML path."
        ),
    ] = None,
    out_dir: Annotated[str | None, typer.Option("--out", help="Run folder (runs/NAME).")] = None,
    use: Annotated[
        list[str] | None,
        typer.Option("--use", metavar="STAGE=CHECKPOINT", help="Skip a stage: use these weights."),
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Train this stage (or variant) only.")
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="STAGE.KEY=VALUE", help="Change a stage's key (ablation: KEY=VALUE)."
        ),
    ] = None,
) -> None:
    """Train every stage of a system recipe in order, each resumable, into OUT/STAGE;
    an ablation recipe trains and measures each variant into OUT/VARIANT."""
    if context.invoked_subcommand is not None:
        if recipe or out_dir or use or only or settings:
            raise VlirError("give system options after the stage: vlir train STAGE --recipe ...")
        return
    if recipe is None:
        out.print(context.get_help())
        raise typer.Exit(0)
    from vlir.training.ablation import is_ablation, run_ablation
    from vlir.training.common import parse_settings
    from vlir.training.system import find_recipe, train_system

    if is_ablation(find_recipe(recipe)):
        if use:
            raise VlirError("--use names a system's stage; an ablation has variants (--only)")
        run_ablation(recipe, out_dir, parse_settings(settings), only)
        return
    uses = {}
    for pair in use or []:
        stage, sep, path = pair.partition("=")
        if not sep or not stage or not path:
            raise VlirError(f"--use {pair!r}: expected STAGE=CHECKPOINT")
        uses[stage] = path
    train_system(recipe, out_dir, uses, parse_settings(settings), only)


Recipe = Annotated[str | None, typer.Option("--recipe", help="YAML recipe (see configs/).")]
RunDir = Annotated[str | None, typer.Option("--out", help="Run folder.")]
Steps = Annotated[int | None, typer.Option("--steps", help="Total steps.")]
Batch = Annotated[int | None, typer.Option("--batch", help="Images per step.")]
Settings = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Any recipe key, e.g. --set crop=128."),
]


def _train(
    stage: str, recipe: str | None, overrides: dict[str, object], settings: list[str] | None
) -> None:
    import importlib

    from vlir.training.common import load_recipe, parse_settings

    module = importlib.import_module(f"vlir.training.{stage}")
    recipe_class = getattr(module, f"{stage.capitalize()}Recipe")
    values = {**overrides, **parse_settings(settings)}
    best = module.train(load_recipe(recipe_class, recipe, values))
    out.print(f"best checkpoint: {best}", markup=False, highlight=False)


TRAINING_STAGES = {
    "perception": "VLMIR stage 1: the image tower, degradation predictor and text LoRA.",
    "restorer": "The conditioned restorer (LMDIR blocks + SPIRE modulation).",
    "denoiser": "The noise expert the pipeline gives white noise alone (FFDNet-style sigma map).",
    "prior": "SPIRE's diffusion prior on clean photos (frozen afterwards).",
    "refiner": "The refiner's adaptor on the frozen prior (after `vlir train prior`).",
}


def _stage_command(stage: str, help_text: str) -> Callable[..., None]:
    """``vlir train STAGE``: every stage takes the same options, only its recipe differs."""

    def command(
        recipe: Recipe = None,
        out_dir: RunDir = None,
        steps: Steps = None,
        batch: Batch = None,
        settings: Settings = None,
    ) -> None:
        _train(stage, recipe, {"out": out_dir, "steps": steps, "batch": batch}, settings)

    command.__doc__ = f"{help_text} Resumes from OUT/checkpoint.pt; exports OUT/best, OUT/last."
    return command


for _stage, _help in TRAINING_STAGES.items():
    train_app.command(_stage)(_stage_command(_stage, _help))


@app.command()
def example(
    output: Annotated[str, typer.Option("-o", "--output", help="Where to write it.")] = (
        "example.png"
    ),
    overwrite: Overwrite = False,
) -> None:
    """Write a clean example photo (scikit-image's public-domain astronaut) to try vlir on."""
    from skimage import data

    rgb = data.astronaut().astype(np.float32) / 255.0
    path = save_image(output, Image(rgb=rgb), overwrite=overwrite)
    out.print(f"wrote {path}", markup=False, highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: user errors become one line and exit code 1."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="vlir")
    except VlirError as exc:
        err.print(f"vlir: error: {exc.one_line()}", markup=False, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("vlir: interrupted", markup=False)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
