"""The ``Restorer``: loads the networks, reads the photo, follows its ``Decision`` and
returns a ``Restoration``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from vlir.conditioning import Conditioning
from vlir.deconvolution import kernel_spread, wiener_deconvolve
from vlir.errors import VlirError
from vlir.io import as_hwc, grey_rgb, is_grey, to_tensor
from vlir.modeling import CONFIG_NAME, resolve_checkpoint, resolve_device, weights_fingerprint
from vlir.perception import Analysis, PerceptionModel, analyze, load_perception
from vlir.perception.analyze import too_small
from vlir.perception.jpeg_grid import jpeg_grid_start
from vlir.perception.model import Perception
from vlir.perception.noise_level import censored_sigma
from vlir.pipeline import tiled
from vlir.pipeline.blur import Deblurred, Deconvolution
from vlir.pipeline.cast import CAST_WORDS, colours_of
from vlir.pipeline.decision import decide
from vlir.pipeline.frames import UPRIGHT_VIEWS, grid_margin, in_frame, onto_grid
from vlir.pipeline.noise import unquantised_jpeg
from vlir.pipeline.removal import removes_jpeg
from vlir.pipeline.result import Restoration
from vlir.pipeline.tiled import AUTO_TILE_PIXELS, DEFAULT_TILE, PassCounter, restore_views
from vlir.restoration import RestorerModel, make_conditioning, semantic_tower
from vlir.restoration.anscombe import anscombe, inverse_anscombe
from vlir.restoration.denoiser import DenoiserModel
from vlir.text import TextEncoder, TextEncoding, load_text_encoder
from vlir.tiling import restore_tiled, tile_count

if TYPE_CHECKING:  # diffusers takes seconds to import: only --refine pays for it
    from vlir.diffusion import Refiner


def _unless_same(
    analyzer: PerceptionModel | None, perception: PerceptionModel
) -> PerceptionModel | None:
    """None where the analyzer holds the same weights (one analysis then serves both)."""
    if analyzer is None or weights_fingerprint(analyzer) == weights_fingerprint(perception):
        return None
    return analyzer


class Restorer:
    """The restorer with its perception and text towers, ready to call on images.

    The diffusion refiner loads on first use (``refine=True``): most calls never need it.
    ``model`` None: ``refiner`` is a diffusion restorer and does all the work.
    ``perception`` gives the tokens the model was trained on; ``analyzer`` (here by default
    the same; ``from_pretrained``: the shipped ``perception``) says what is wrong and
    writes the automatic prompt, so a better-trained perception improves every
    restorer's report and prompt without retraining them.
    """

    def __init__(
        self,
        model: RestorerModel | None,
        perception: PerceptionModel,
        text: TextEncoder,
        refiner: Refiner | str = "refiner",
        semantic_text: TextEncoder | None = None,
        analyzer: PerceptionModel | None = None,
        denoiser: DenoiserModel | None = None,
    ) -> None:
        # (NHWC: oneDNN's depthwise convolutions above all are faster in it; CHANNELS_LAST)
        self.model = None if model is None else model.eval().to(memory_format=tiled.CHANNELS_LAST)
        self.denoiser = None
        """The noise expert, where white noise is all there is to remove (``noise_request``)."""
        if denoiser is not None and model is not None:
            self.denoiser = denoiser.eval().to(memory_format=tiled.CHANNELS_LAST)
        self.perception = perception.eval()
        self.analyzer = self.perception if analyzer is None else analyzer.eval()
        self.text = text.eval()
        self.semantic_text = text if semantic_text is None else semantic_text.eval()
        """Reads semantic prompts (perception's caption-aligned tower where the model
        was trained with it)."""
        self._refiner = refiner
        self.device = next(self.perception.parameters()).device
        """Where the networks run (``to``); the photo and the numpy work stay on the CPU."""
        if model is None:
            self.load_refiner()

    def to(self, device: str | torch.device) -> Restorer:
        """Runs the networks on ``device`` (``resolve_device``: "cuda", "cpu", "auto"), as
        diffusers' ``pipeline.to``. The photo stays in CPU memory, as do the numpy steps
        (the JPEG grid, deconvolution, blending); each tile goes to the device and back, so
        the device holds the networks and one tile's features whatever the photo's size."""
        self.device = resolve_device(device)
        parts = (self.model, self.denoiser, self.perception, self.analyzer, self.text)
        for part in (*parts, self.semantic_text):
            if part is not None:
                part.to(self.device)
        if not isinstance(self._refiner, str):
            self._refiner.to(self.device)
        return self

    def load_refiner(self) -> Refiner:
        """The refiner, loaded now if it was given by name (on this restorer's device)."""
        from vlir.diffusion import Refiner

        if not isinstance(self._refiner, Refiner):
            self._refiner = Refiner.from_pretrained(self._refiner)
        self._refiner.to(self.device)  # (each a no-op once done)
        for part in (self._refiner.adaptor, self._refiner.prior):
            part.to(memory_format=tiled.CHANNELS_LAST)
        return self._refiner

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = "restorer",
        *,
        refiner: str = "refiner",
        analyzer: str | os.PathLike[str] | None = "perception",
        denoiser: str | os.PathLike[str] | None = "denoiser",
        device: str | torch.device = "cpu",
    ) -> Restorer:
        """A restorer checkpoint (``restorer``, ``lmdir``) or a diffusion restorer
        (``vlmir``, ``spire``), with the towers its config names; ``analyzer``: the
        perception that reads the photo (None: the one the model's tokens come from);
        ``denoiser``: the noise expert beside a restorer (None: the restorer removes noise
        alone too; a diffusion restorer samples everything); ``device``: where the
        networks run (``to``)."""
        target = resolve_device(device)  # (a device not here is refused before loading)
        return cls._load(name_or_path, refiner, analyzer, denoiser).to(target)

    @classmethod
    def _load(
        cls,
        name_or_path: str | os.PathLike[str],
        refiner: str,
        analyzer: str | os.PathLike[str] | None,
        denoiser: str | os.PathLike[str] | None = None,
    ) -> Restorer:
        path = resolve_checkpoint(name_or_path)
        reader = None if analyzer is None else PerceptionModel.from_pretrained(analyzer)
        model_type = json.loads((path / CONFIG_NAME).read_text()).get("model_type")
        if model_type == "refiner":
            from vlir.diffusion import Refiner

            diffusion = Refiner.from_pretrained(path)
            config = diffusion.adaptor.config
            if config.restorer is not None:
                raise VlirError(
                    f"{name_or_path} refines the restorer {config.restorer!r}: run "
                    f"--model {config.restorer} --refine --refiner {name_or_path}"
                )
            perception = load_perception(config.perception, config.perception_fingerprint)
            text = load_text_encoder(config.text_encoder)
            semantic = semantic_tower(perception, text, config.align_semantic)
            return cls(
                None, perception, text, diffusion, semantic, _unless_same(reader, perception)
            )
        if model_type != "restorer":
            raise VlirError(f"{name_or_path}: a {model_type!r} checkpoint does not restore images")
        model = RestorerModel.from_pretrained(path)
        perception = load_perception(model.config.perception, model.config.perception_fingerprint)
        text = load_text_encoder(model.config.text_encoder)
        semantic = semantic_tower(perception, text, model.config.align_semantic)
        expert = None if denoiser is None else DenoiserModel.from_pretrained(denoiser)
        reader = _unless_same(reader, perception)
        return cls(model, perception, text, refiner, semantic, reader, denoiser=expert)

    @property
    def reads_prompts(self) -> bool:
        """Whether a restoration prompt changes anything (a blind model ignores it)."""
        if self.model is not None:
            return True
        config = self.load_refiner().adaptor.config
        return config.prompt_modulation or "prompt" in config.tokens

    @property
    def reads_reference(self) -> bool:
        """Whether the model has LMDIR's reference-based block (else a reference is refused)."""
        return self.model is not None and self.model.config.use_reference_block

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray | torch.Tensor,
        *,
        prompt: str | None = None,
        semantic: str | None = None,
        reference: np.ndarray | torch.Tensor | None = None,
        strength: float = 1.0,
        tile: int | None = None,
        gather: int = 1,
        refine: bool = False,
        steps: int | None = None,
        seed: int = 0,
        deconvolve: bool = True,
        ensemble: bool = False,
        align_grid: bool = True,
        noise_expert: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> Restoration:
        """Automatic (no ``prompt``), where the analyzer finds nothing: a photo that reads
        faintly hazy (``HAZE_HINT``) is dehazed, one whose blur estimate reads blurred
        (``UNSEEN_BLUR_SPREAD``) deblurred, and one that reads enlarged (``ENLARGED_HINT``)
        or sharp comes back as it is (``Restoration.kept``).
        The restorer's blind mode, which ran there before, was worse than the photo itself
        on what the analyzer misses (sigma-1 noise, quality-92 JPEG, faint rain or colour
        cast), took clean photos to 43.7 dB from themselves, and gained 0.5 dB on faint
        haze (20 BSD400 photos, ``benchmarks/nothing_found.py``), where "dehaze" gains
        more; words ("remove all degradation") still run it.

        ``deconvolve``: where blur (camera shake, defocus, Gaussian) is all the request
        removes (or it is blind and the analyzer finds only that), its kernel is estimated
        from the photo and divided out instead of running the restorer, and where white
        or shot noise is removed with it, from the noise expert's output (``vlir.deconvolution``;
        False: the restorer tries). ``gather``: passes over the
        tiles that gather the whole photo's statistics before the restoring pass, so tiles
        restore as the untiled photo would (0: each tile uses its own; each pass costs one
        restoring pass; see ``photo_statistics``). ``refine``: walk ``steps`` diffusion
        steps from the restored image (``seed`` fixes the noise, so the same call gives the
        same pixels). A diffusion restorer always samples, ``steps`` of it (default: its
        config's). ``ensemble``: restore the 8 flips and quarter turns of the photo and
        average them back in its frame (the field's self-ensemble, EDSR's "+": a few
        tenths of a dB for 8 times the time; the restorer's attention to perception's
        tokens has no positions, so every view shares one reading of the photo; where JPEG
        is removed, the 4 upright views, ``UPRIGHT_VIEWS``).
        ``align_grid``: where the photo's JPEG grid does not start at its corner (a cropped
        JPEG) and JPEG is among what is removed (``removes_jpeg``), mirror rows and
        columns above and left of it so it does, and cut them off after
        (``vlir.perception.jpeg_grid``; False: read and restore it as framed).
        ``noise_expert``: where white or shot noise is all the request removes and all the
        photo reads as (``noise_request``), and no semantic prompt, reference or
        refinement asks for the restorer, the noise expert restores it (shot noise through
        the Anscombe transform) at the stated level, else the one measured from the photo,
        else the one read (``noise_level``, ``Restoration.noise_sigma``; False: the
        restorer). A blur found under the noise is kept ("denoise") or divided out of
        the expert's output (removed: automatic, blind, or named); automatic or blind,
        so is one not found whose probabilities hint at it (``BLUR_UNDER_NOISE_HINT``).
        ``progress(done, total)``: called after each pass of a network over a tile
        (``PassCounter``); never called where no network runs (deconvolved, or kept)."""
        start = time.perf_counter()
        diffusion = self.model is None
        if diffusion:
            refine = True
            steps = steps or self.load_refiner().adaptor.config.steps
        self._check(prompt, reference, gather, ensemble)
        steps = 1 if steps is None else steps
        if refine and steps < 1:
            raise VlirError(f"steps must be at least 1 (got {steps})")
        # read the photo, then decide what to do with it
        photo_hwc = as_hwc(image)
        grey = is_grey(photo_hwc)
        pixels, analysis, perception, grid = self._read(photo_hwc, prompt, align_grid)
        unquantised = unquantised_jpeg(analysis, prompt, photo_hwc)
        if unquantised is not None:  # a JPEG its blocks disprove: noise alone
            analysis = analysis.without("jpeg")
        always_blind = diffusion and self.load_refiner().adaptor.config.auto_prompt == "blind"
        strongest = None  # the strongest noise the expert removes, where it may run
        if noise_expert and semantic is None and reference is None and not refine:
            strongest = None if self.denoiser is None else self.denoiser.config.max_sigma
        decision = decide(
            analysis,
            prompt,
            restoring=not diffusion,
            always_blind=always_blind,
            max_sigma=strongest,
            grey=grey,
            refine=refine,
            deconvolve=deconvolve,
            pixels=pixels,
        )
        prompt = decision.prompt
        plan = decision.deconvolution
        # the conditioning: perception's tokens, the prompt's, the semantic prompt's
        encoded = self.text([prompt])
        semantic_encoded = self.semantic_text([semantic]) if semantic else None

        def condition(reference_part: torch.Tensor | None) -> Conditioning:
            return make_conditioning(perception, encoded, semantic_encoded, None, reference_part)

        conditioning = condition(None)
        reference_pixels = None
        if reference is not None:  # brought to the photo's frame once; each tile sees its part
            reference_pixels = onto_grid(in_frame(reference, photo_hwc.shape[:2]), grid)
        height, width = pixels.shape[-2:]
        use_tiles = tile is not None or height * width > AUTO_TILE_PIXELS
        tile_size = tile or DEFAULT_TILE
        passes = PassCounter(progress)
        if refine:
            passes.plan(
                tile_count(height, width, tile=tile_size if use_tiles else max(height, width))
            )
        # restore: kept as it is, its blur divided out, or the restorer over views and tiles
        views = (0,)
        if ensemble:  # (a JPEG's blocks stay on its grid only in upright views)
            views = UPRIGHT_VIEWS if removes_jpeg(prompt, analysis) else tuple(range(8))
        deblurred, kept, divided = None, False, None
        found_cast = any(finding.op == "color_cast" for finding in analysis.found)
        colours_from_restorer = decision.cast and found_cast  # (else named, not found)
        under_noise = decision.noise is not None  # a plan then deblurs the expert's output
        if plan is not None and not under_noise:
            deblurred, kept = self._divide_out(pixels, plan, decision.unseen, deconvolve)
        gathered = 0

        def over_tiles(
            source: torch.Tensor,
            reference_part: torch.Tensor | None,
            forward: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
            network: RestorerModel | DenoiserModel,
            over: tuple[int, ...] = views,
        ) -> tuple[torch.Tensor, int]:
            """``forward`` (``network``'s) over ``source``'s views (``over``) and tiles, as
            the call asks (tiles, gathering passes), counted for the progress bar."""
            tile_or_whole = tile_size if use_tiles else None
            return restore_views(
                source,
                reference_part,
                forward,
                passes,
                device=self.device,
                config=network.config,
                views=over,
                tile=tile_or_whole,
                gather=gather,
            )

        def by_restorer(
            source: torch.Tensor = pixels, told: Conditioning | None = None
        ) -> tuple[torch.Tensor, int]:
            """The restorer over ``source`` (the photo, else the expert's output), conditioned
            as the call is (the reference's part per tile), else as ``told``."""
            model = self.model

            def restore(patch: torch.Tensor, part: torch.Tensor | None) -> torch.Tensor:
                if told is not None:
                    return model(patch, told)
                return model(patch, conditioning if part is None else condition(part))

            return over_tiles(source, reference_pixels if told is None else None, restore, model)

        if self.model is None or decision.enlarged is not None or kept:
            restored = pixels  # a diffusion restorer starts from the input; else: kept
        elif deblurred is not None:
            restored = torch.from_numpy(deblurred.image).permute(2, 0, 1)[None]
        elif decision.noise is not None and self.denoiser is not None:
            denoiser, noise = self.denoiser, decision.noise
            shot = noise.op == "shot_noise"  # white in the Anscombe transform, undone after
            source = anscombe(pixels, noise.level) if shot else pixels

            def denoise(sigma: float, over: tuple[int, ...]) -> tuple[torch.Tensor, int]:
                return over_tiles(
                    source, None, lambda patch, _: denoiser(patch, sigma), denoiser, over
                )

            if noise.censored:  # clipped strong noise: the level fitted to a first pass
                first, _ = denoise(noise.sigma, (0,))
                fitted = censored_sigma(pixels[0], first[0].clamp(0, 1))
                noise = replace(noise, level=fitted, source="fitted", censored=False)
                decision.noise = noise
            restored, gathered = denoise(noise.sigma, views)
            if shot:
                restored = inverse_anscombe(restored, noise.level)
            denoised = restored
            if plan is not None:  # a blur under the noise, removed too
                divided, _ = self._divide_out(restored.clamp(0, 1), plan, False, deconvolve)
            if divided is not None:
                restored = torch.from_numpy(divided.image).permute(2, 0, 1)[None]
            restored = restored + noise.keep * (pixels - denoised)  # a partial request
            if colours_from_restorer:  # the restorer saw the cast: the colours it gives
                colours, _ = by_restorer()
                restored = colours_of(colours.clamp(0, 1), restored.clamp(0, 1))
            elif decision.cast:  # named, not seen under the noise: read on the denoised photo
                denoised = restored.clamp(0, 1)
                restored, _ = by_restorer(denoised, self._cast_conditioning(denoised))
        else:
            restored, gathered = by_restorer()
        if refine:
            restored = self._refine(
                pixels,
                restored,
                conditioning,
                semantic_encoded,
                steps,
                seed,
                use_tiles,
                tile_size,
                passes,
            )
        # back to the photo's frame, at the strength asked for
        output = pixels + float(strength) * (restored - pixels)
        top, left = grid_margin(grid)
        result = output[0, :, top:, left:].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float32)
        if grey:  # a grey photo comes back grey, as a grey file is written (no tint made up)
            result = grey_rgb(result)
        # deconvolved, or returned as it is: no tiles, views or reference were used
        untouched = deblurred is not None or decision.enlarged is not None or kept
        deconvolved = deblurred if deblurred is not None else divided  # (the expert's)
        return Restoration(
            image=result,
            analysis=analysis,
            prompt=prompt,
            automatic=decision.automatic,
            seconds=time.perf_counter() - start,
            tiles=use_tiles and not untouched,
            refine_steps=steps if refine else 0,
            seed=seed if refine else None,
            diffusion=diffusion,
            reference=(reference is not None)
            if self.reads_reference and not untouched and decision.noise is None
            else None,
            gathered=gathered,
            kernel=None if deconvolved is None else deconvolved.kernel,
            left=plan.left if plan is not None and deblurred is not None else (),
            views=len(views) if self.model is not None and not untouched else 1,
            enlarged=decision.enlarged,
            sigma=None if deconvolved is None else deconvolved.sigma,
            sigma_stated=plan is not None and plan.stated_sigma is not None,
            grid=grid,
            kept=kept,
            hazy=decision.hazy,
            blurred=decision.blurred,
            unquantised=unquantised,
            noise_sigma=None if decision.noise is None else decision.noise.removed,
            noise_sigma_present=None if decision.noise is None else decision.noise.present,
            noise_sigma_source=None if decision.noise is None else decision.noise.source,
            shot_peak=decision.noise.level
            if decision.noise is not None and decision.noise.op == "shot_noise"
            else None,
            noise_retyped=decision.noise is not None and decision.noise.retyped,
            cast=colours_from_restorer,
            cast_after=decision.cast and not colours_from_restorer,
        )

    def _check(
        self,
        prompt: str | None,
        reference: np.ndarray | torch.Tensor | None,
        gather: int,
        ensemble: bool,
    ) -> None:
        """Refuses what this model cannot do with the call's arguments."""
        if self.model is None:
            if prompt is not None and not self.reads_prompts:
                raise VlirError("this model takes no restoration prompt (it is blind)")
            if ensemble:
                raise VlirError("a diffusion restorer samples: it has no self-ensemble")
        if reference is not None and not self.reads_reference:
            raise VlirError("this model takes no reference photo (it has no reference block)")
        if gather < 0:
            raise VlirError(f"gather must be 0 or more passes, got {gather}")

    def _read(
        self, photo_hwc: np.ndarray, prompt: str | None, align_grid: bool
    ) -> tuple[torch.Tensor, Analysis, Perception, tuple[int, int]]:
        """The photo as it is restored, [1, 3, H, W], and what is read in it: the
        analyzer's ``Analysis`` (the report, the automatic prompt), the perception the
        restorer was trained on (its tokens), and where the JPEG grid started. A grid off
        the corner (a cropped JPEG) is moved onto it (``onto_grid``) only where JPEG is
        among what is removed (``removes_jpeg``); else the photo is read as framed."""
        pixels = to_tensor(photo_hwc)
        # (a photo too small to read is left as framed: its size is what the refusal names)
        grid = jpeg_grid_start(photo_hwc) if align_grid and not too_small(pixels) else (0, 0)
        on_grid = onto_grid(pixels, grid)
        analysis = analyze(self.analyzer, on_grid.to(self.device))
        if grid != (0, 0) and not removes_jpeg(prompt, analysis):
            # a grid read in a photo with no JPEG to remove is no reason to touch its frame
            grid, on_grid = (0, 0), pixels
            analysis = analyze(self.analyzer, pixels.to(self.device))
        perception = analysis.perception
        if self.analyzer is not self.perception:
            perception = analyze(self.perception, on_grid.to(self.device)).perception
        return on_grid, analysis, perception, grid

    def _cast_conditioning(self, denoised: torch.Tensor) -> Conditioning:
        """How the restorer is told to correct the colour cast of the noise expert's output
        ``denoised`` [1, 3, H, W]: ``CAST_WORDS``, reading the denoised photo, a cast photo
        with no noise, its own single-op task. For a cast named but not found: the
        restorer reading the noisy photo, told to remove both, does not see the cast
        either. Told "correct the color cast; denoise" where the cast under the engine's
        noise was missed: 24.84 -> 25.88 dB on 148 BSD400 training draws, 24.80 -> 25.58
        on CBSD68's 57 (``benchmarks/cast_hint.py``)."""
        perception = analyze(self.perception, denoised.to(self.device)).perception
        return make_conditioning(perception, self.text([CAST_WORDS]), None, None, None)

    @staticmethod
    def _divide_out(
        pixels: torch.Tensor, plan: Deconvolution, unseen: bool, deconvolve: bool
    ) -> tuple[Deblurred | None, bool]:
        """The photo with its blur divided out (None: no kernel, or ``deconvolve`` off),
        and whether it is kept as it is instead (nothing found, and its estimate reads
        sharp)."""
        photo = pixels[0].permute(1, 2, 0).numpy()
        found = plan.kernel(photo)
        kept = found is None and unseen
        if found is None or not deconvolve:
            return None, kept
        kernel, sigma = found
        # a point (the photo reads sharp): nothing to undo, not even the damping's 0.5%
        sharp = kernel_spread(kernel) == 0.0
        image = photo if sharp else wiener_deconvolve(photo, kernel, plan.balance)
        return Deblurred(kernel, sigma, image), kept

    def _refine(
        self,
        degraded: torch.Tensor,
        restored: torch.Tensor,
        conditioning: Conditioning,
        semantic: TextEncoding | None,
        steps: int,
        seed: int,
        use_tiles: bool,
        tile_size: int,
        passes: PassCounter,
    ) -> torch.Tensor:
        """The refiner over the same tiles; its noise is drawn once for the whole image."""
        refiner = self.load_refiner()
        noise = torch.randn(degraded.shape, generator=torch.Generator().manual_seed(seed))
        stacked = torch.cat([restored.clamp(0, 1), degraded, noise], dim=1)  # [1, 9, H, W]
        caption = None if semantic is None else (semantic.tokens, semantic.mask)

        def run(patch: torch.Tensor, corner: tuple[int, int]) -> torch.Tensor:
            restored_tile, degraded_tile, noise_tile = patch.to(self.device).split(3, dim=1)
            refined = refiner(
                restored_tile,
                degraded_tile,
                conditioning,
                noise=noise_tile,
                steps=steps,
                caption_tokens=None if caption is None else caption[0],
                caption_mask=None if caption is None else caption[1],
            )
            passes.tick()
            return refined.cpu()

        height, width = degraded.shape[-2:]
        tile = tile_size if use_tiles else max(height, width)
        return restore_tiled(stacked, run, tile=tile, multiple=refiner.multiple)
