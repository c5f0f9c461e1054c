"""``vlir serve``: the restorer in a browser, on this machine.

A person drops a photo in, reads what perception found, edits the prompt it suggests
("remove the rain but keep the blur") or leaves it empty for automatic restoration, and
gets a before/after view and the restored file. The work is the command line's: the same
loader (EXIF turned upright, 16-bit, alpha, CMYK, bombs refused), the same ``Restorer``
call and the same writer, so the file downloaded here is the file ``vlir restore`` writes
(as PNG: lossless, and it keeps 16 bits, alpha, ICC and EXIF).

``Service`` holds that work and knows nothing of the web page, so it is tested without a
browser; ``build_app`` wraps it in Gradio, an optional extra (``pip install
'vlir[serve]'``) imported only there.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from PIL import Image as PILImage

from vlir.errors import VlirError
from vlir.io import DEFAULT_MAX_PIXELS, Image, load_image, save_image
from vlir.perception import Analysis, analyze

if TYPE_CHECKING:
    import gradio

    from vlir.pipeline import Restorer

PREVIEW_SIDE = 1600
"""Longest side of the before/after view sent to the browser (the file is full size)."""

KEPT_RESULTS = 16
"""Restored files kept on disk at once; older ones are deleted as new ones are written
(a server that runs for days must not fill its disk with 16-bit PNGs)."""

T = TypeVar("T")


def upload_limit(max_pixels: int) -> int:
    """The largest upload in bytes: a file bigger than ``max_pixels`` of uncompressed
    16-bit RGBA (plus a megabyte of metadata) holds no photo the loader would accept,
    so it is refused before it fills the disk."""
    return max_pixels * 4 * 2 + 1_000_000


def preview(rgb: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    """An 8-bit copy of ``rgb`` [H, W, 3] in [0, 1] no longer than ``side`` on its long
    side: a 12-megapixel photo would take seconds to encode for a view a screen shows at
    a tenth of its pixels."""
    pixels = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    height, width = pixels.shape[:2]
    scale = side / max(height, width)
    if scale >= 1.0:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(PILImage.fromarray(pixels).resize(size, PILImage.Resampling.LANCZOS))


def findings_markdown(analysis: Analysis) -> str:
    """What perception read, as a Markdown table (the found ops in bold)."""
    rows = [
        f"| {'**' + f.op + '**' if f.present else f.op} | {f.probability:.2f} "
        f"| {f.parameter} {f.strength:g} |"
        for f in analysis.shown
    ]
    lines = ["| degradation | probability | strength |", "|---|---:|---|", *rows]
    if not analysis.found:
        lines.append("| (nothing found) | | |")
    lines += ["", f"Suggested prompt: `{analysis.prompt.format()}`"]
    if analysis.note:
        lines.append(f"\nNote: {analysis.note}: these findings are guesses.")
    return "\n".join(lines)


EXAMPLES = (
    ("astronaut", "blur sigma=2, noise sigma=30"),
    ("chelsea", "jpeg quality=10"),
    ("coffee", "rain density=0.01, noise sigma=10"),
)
"""scikit-image's bundled public-domain photos, degraded when the page starts: the
README's example (blur and noise) first, so a first visitor has something to try."""


def write_examples(folder: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """``EXAMPLES`` written as PNGs into ``folder``, each with what was done to it."""
    from skimage import data

    from vlir.degradations import parse_ops

    folder = Path(folder)
    written = []
    for index, (name, ops) in enumerate(EXAMPLES):
        clean = getattr(data, name)().astype(np.float32) / 255.0
        record = parse_ops(ops, np.random.default_rng(index))
        path = folder / f"{name}.png"
        save_image(path, np.clip(record.apply(clean), 0.0, 1.0), overwrite=True)
        written.append((path, ops))
    return written


@dataclass
class Served:
    """One restoration as the page shows it."""

    before: np.ndarray
    """[h, w, 3] uint8, the input's preview."""
    after: np.ndarray
    """[h, w, 3] uint8, the restored preview."""
    path: Path
    """The restored file at full size."""
    report: str
    """What was found and what was done (``Restoration.report``)."""


class Service:
    """The restorer behind the page: analyse or restore one uploaded file.

    Errors come out as ``VlirError`` with the upload's own name in place of the server's
    temporary path, so the page can show them as one line."""

    def __init__(
        self,
        restorer: Restorer,
        workdir: str | os.PathLike[str],
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        kept: int = KEPT_RESULTS,
    ) -> None:
        self.restorer = restorer
        self.workdir = Path(workdir)
        self.max_pixels = max_pixels
        self.kept = kept
        self._count = 0

    def analyze(self, upload: str | None) -> tuple[str, str]:
        """The findings table and the prompt they suggest (to edit and restore with)."""
        image = self._load(upload, "photo")
        with torch.inference_mode():
            analysis = analyze(self.restorer.analyzer, image.to_tensor().to(self.restorer.device))
        suggested = analysis.prompt.format() if analysis.found else ""
        return findings_markdown(analysis), suggested

    def restore(
        self,
        upload: str | None,
        *,
        prompt: str | None = None,
        semantic: str | None = None,
        reference: str | None = None,
        strength: float = 1.0,
        ensemble: bool = False,
        refine: bool = False,
        seed: int = 0,
        suggested: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Served:
        """Restore the upload as ``vlir restore`` would; empty words count as none, and so
        does the prompt ``analyze`` suggested, unedited: restoring automatically is more than
        following that prompt (what is kept where nothing is found, how a blur found alone
        is deconvolved), and a person who did not change it asked for nothing else."""
        prompt = (prompt or "").strip()
        if suggested and prompt == suggested.strip():
            prompt = ""
        image = self._load(upload, "photo")
        reference_rgb = self._load(reference, "reference").rgb if reference else None
        if not 0.0 <= strength <= 2.0:
            raise VlirError(f"strength must be between 0 and 2, got {strength}")
        result = self._named(
            upload,
            lambda: self.restorer(
                image.rgb,
                prompt=prompt or None,
                semantic=(semantic or "").strip() or None,
                reference=reference_rgb,
                strength=strength,
                ensemble=ensemble,
                refine=refine,
                seed=int(seed),
                progress=progress,
            ),
        )
        folder = self._result_folder()
        name = f"{Path(str(upload)).stem}_restored.png"
        path = save_image(folder / name, image.with_rgb(result.image))
        return Served(preview(image.rgb), preview(result.image), path, result.report())

    def _load(self, upload: str | None, what: str) -> Image:
        if not upload:
            raise VlirError(f"no {what} given: drop an image file in first")
        return self._named(upload, lambda: load_image(upload, max_pixels=self.max_pixels))

    @staticmethod
    def _named(upload: str | None, work: Callable[[], T]) -> T:
        try:
            return work()
        except VlirError as exc:
            if upload:
                exc = VlirError(str(exc).replace(str(upload), Path(upload).name))
            raise exc from None

    def _result_folder(self) -> Path:
        """A fresh folder for one result (two uploads of the same name never meet), the
        oldest beyond ``kept`` deleted."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._count += 1
        folder = Path(tempfile.mkdtemp(prefix=f"{self._count:08d}-", dir=self.workdir))
        for old in sorted(self.workdir.iterdir())[: -self.kept]:
            shutil.rmtree(old, ignore_errors=True)
        return folder


def build_app(
    service: Service, *, examples: list[tuple[Path, str]] | None = None, title: str = "vlir"
) -> gradio.Blocks:
    """The page: photo, findings, prompt, options; before/after and the file; ``examples``
    (``write_examples``) to click on."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no phoning home
    import gradio as gr

    def guarded(work: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(work)  # (Gradio reads the signature: it fills in ``progress``)
        def call(*args: Any) -> T:
            try:
                return work(*args)
            except VlirError as exc:
                raise gr.Error(exc.one_line(), print_exception=False) from None

        return call

    def on_analyze(upload: str | None) -> tuple[str, str, str]:
        table, suggested = service.analyze(upload)
        return table, suggested, suggested  # shown, and remembered to tell an edit from it

    def on_change(upload: str | None) -> tuple[str, str, str]:
        return on_analyze(upload) if upload else ("", "", "")  # (cleared: nothing to read)

    def on_restore(
        upload: str | None,
        prompt: str,
        semantic: str,
        reference: str | None,
        strength: float,
        ensemble: bool,
        refine: bool,
        seed: float,
        suggested: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's way to ask for one)
    ) -> tuple[tuple[np.ndarray, np.ndarray], str, str]:
        served = service.restore(
            upload,
            prompt=prompt,
            semantic=semantic,
            reference=reference,
            strength=strength,
            ensemble=ensemble,
            refine=refine,
            seed=int(seed),
            suggested=suggested,
            progress=lambda done, total: progress((done, total), desc="restoring", unit="passes"),
        )
        return (served.before, served.after), str(served.path), served.report

    restorer = service.restorer
    with gr.Blocks(title=title, delete_cache=(600, 3600)) as app:
        gr.Markdown(
            "# vlir: vision-language guided image restoration\n"
            "Drop a photo in, or click an example below: vlir says what is wrong and "
            'suggests a prompt. Edit it ("remove the rain but keep the blur", "denoise with '
            'sigma 15") or leave it as it is for automatic restoration, then **Restore**."'
        )
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Photo", file_types=["image"], type="filepath")
                findings = gr.Markdown()
                suggested = gr.State("")
                prompt = gr.Textbox(  # (a blind model takes none: vlmir)
                    label="Prompt (empty, or as suggested: automatic)",
                    placeholder="remove all degradation",
                    visible=restorer.reads_prompts,
                )
                semantic = gr.Textbox(
                    label="What the photo shows (optional)", placeholder="a cat on a sofa"
                )
                with gr.Accordion("Options", open=False):
                    reference = gr.File(
                        label="Reference: another photo of the same subject",
                        file_types=["image"],
                        type="filepath",
                        visible=restorer.reads_reference,
                    )
                    strength = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Strength")
                    ensemble = gr.Checkbox(
                        label="Self-ensemble (flips and turns averaged: a little better, "
                        "up to 8x slower)",
                        visible=restorer.model is not None,
                    )
                    refine = gr.Checkbox(  # (a diffusion restorer always samples)
                        label="Refine with the diffusion prior (slower)",
                        visible=restorer.model is not None,
                    )
                    seed = gr.Number(value=0, precision=0, label="Refinement seed")
                with gr.Row():
                    analyze_button = gr.Button("Analyze")
                    restore_button = gr.Button("Restore", variant="primary")
            with gr.Column():
                compare = gr.ImageSlider(label="Before / after", format="png", type="numpy")
                report = gr.Textbox(label="What vlir found and did", lines=3)
                restored = gr.File(label="Restored file (full size)")
        shared = {"concurrency_limit": 1, "concurrency_id": "restorer"}  # one CPU at a time
        analyze_button.click(
            guarded(on_analyze),
            [upload],
            [findings, prompt, suggested],
            api_name="analyze",
            **shared,
        )
        # (a file dropped in or an example clicked: read it at once)
        upload.change(
            guarded(on_change),
            [upload],
            [findings, prompt, suggested],
            api_visibility="undocumented",
            **shared,
        )
        if examples:
            gr.Examples(
                [[str(path)] for path, _ in examples],
                [upload],
                example_labels=[f"{path.stem}: {ops}" for path, ops in examples],
                label="Examples (degraded as labelled)",
            )
        restore_button.click(
            guarded(on_restore),
            [upload, prompt, semantic, reference, strength, ensemble, refine, seed, suggested],
            [compare, restored, report],
            api_name="restore",
            **shared,
        )
    return app
