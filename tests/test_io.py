"""Image I/O keeps what users care about and refuses bad files with one clear line."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from vlir.errors import VlirError
from vlir.io import Image, expand_inputs, load_image, plan_outputs, save_image

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def rgb8(photo: np.ndarray) -> np.ndarray:
    return np.round(photo * 255).astype(np.uint8)


def test_png_rgb_round_trip_is_lossless(tmp_path: Path, rgb8: np.ndarray) -> None:
    PILImage.fromarray(rgb8).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.rgb.dtype == np.float32 and image.rgb.shape == (96, 128, 3)
    assert image.bit_depth == 8 and not image.grey and image.alpha is None
    save_image(tmp_path / "b.png", image)
    assert np.array_equal(np.asarray(PILImage.open(tmp_path / "b.png")), rgb8)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_rgb_round_trip_is_lossless(tmp_path: Path, suffix: str) -> None:
    pixels = np.random.default_rng(0).integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    path = tmp_path / f"deep{suffix}"
    if suffix == ".png":
        cv2.imwrite(str(path), pixels[..., ::-1])
    else:
        tifffile.imwrite(path, pixels, photometric="rgb")
    image = load_image(path)
    assert image.bit_depth == 16
    assert np.allclose(image.rgb * 65535, pixels, atol=0.02)
    save_image(tmp_path / f"out{suffix}", image)
    again = load_image(tmp_path / f"out{suffix}")
    assert again.bit_depth == 16
    assert np.array_equal(np.round(again.rgb * 65535).astype(np.uint16), pixels)


def test_float_and_32bit_tiffs_read_as_deep_photos(tmp_path: Path) -> None:
    """PIL opens none of these; scientific and HDR tools write them."""
    rng = np.random.default_rng(2)
    pixels = rng.random((20, 30, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f32.tif", pixels, photometric="rgb")
    image = load_image(tmp_path / "f32.tif")
    assert image.bit_depth == 16 and not image.grey and image.alpha is None
    assert np.array_equal(image.rgb, pixels)
    save_image(tmp_path / "back.tif", image)  # the deepest vlir writes
    assert np.allclose(tifffile.imread(tmp_path / "back.tif") / 65535, pixels, atol=1e-5)
    with pytest.raises(VlirError, match="600 pixels exceeds the limit of 500"):
        load_image(tmp_path / "f32.tif", max_pixels=500)  # refused before it is decoded

    with_alpha = np.concatenate([pixels, rng.random((20, 30, 1))], axis=2).astype(np.float16)
    tifffile.imwrite(tmp_path / "f16a.tif", with_alpha, photometric="rgb")
    image = load_image(tmp_path / "f16a.tif")
    assert image.alpha is not None and np.allclose(image.alpha, with_alpha[..., 3], atol=1e-3)

    wide = rng.integers(0, 2**32, (20, 30, 3), dtype=np.uint32)
    tifffile.imwrite(tmp_path / "u32.tif", wide, photometric="rgb")
    assert np.allclose(load_image(tmp_path / "u32.tif").rgb, wide / (2**32 - 1), atol=1e-6)

    # out-of-range floats clip, NaN reads as black, the orientation tag is applied
    hdr = np.full((20, 30, 3), np.nan, np.float32)
    hdr[:10] = 4.0
    tifffile.imwrite(
        tmp_path / "hdr.tif", hdr, photometric="rgb", extratags=[(274, "H", 1, 6, True)]
    )
    image = load_image(tmp_path / "hdr.tif")
    assert image.rgb.shape == (30, 20, 3)
    assert image.rgb[:, -10:].min() == 1.0 and image.rgb[:, :10].max() == 0.0


def test_16bit_grey_png(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 65536, (16, 24), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), pixels)
    image = load_image(tmp_path / "g16.png")
    assert image.grey and image.bit_depth == 16
    assert np.allclose(image.rgb[..., 1] * 65535, pixels, atol=0.02)
    save_image(tmp_path / "g16_out.png", image)
    assert np.array_equal(cv2.imread(str(tmp_path / "g16_out.png"), cv2.IMREAD_UNCHANGED), pixels)


def test_grey_stays_grey(tmp_path: Path, rgb8: np.ndarray) -> None:
    grey = rgb8[..., 1]
    PILImage.fromarray(grey).save(tmp_path / "g.png")
    image = load_image(tmp_path / "g.png")
    assert image.grey and np.array_equal(image.rgb[..., 0], image.rgb[..., 2])
    save_image(tmp_path / "g_out.png", image)
    out = PILImage.open(tmp_path / "g_out.png")
    assert out.mode == "L" and np.array_equal(np.asarray(out), grey)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_rgba_alpha_is_kept(tmp_path: Path, rgb8: np.ndarray, suffix: str) -> None:
    alpha = np.tile(np.linspace(0, 255, 128).astype(np.uint8), (96, 1))
    PILImage.fromarray(np.dstack([rgb8, alpha]), "RGBA").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.alpha is not None and np.allclose(image.alpha * 255, alpha, atol=1e-3)
    restored = image.with_rgb(image.rgb * 0.5)
    save_image(tmp_path / f"out{suffix}", restored, quality=100)
    out = PILImage.open(tmp_path / f"out{suffix}")
    assert out.mode == "RGBA"
    if suffix != ".webp":
        assert np.array_equal(np.asarray(out)[..., 3], alpha)


def test_grey_alpha(tmp_path: Path, rgb8: np.ndarray) -> None:
    la = np.dstack([rgb8[..., 0], np.full((96, 128), 200, np.uint8)])
    PILImage.fromarray(la, "LA").save(tmp_path / "la.png")
    image = load_image(tmp_path / "la.png")
    assert image.grey and image.alpha is not None
    save_image(tmp_path / "la_out.png", image)
    out = PILImage.open(tmp_path / "la_out.png")
    assert out.mode == "LA" and np.array_equal(np.asarray(out), la)


def test_alpha_follows_a_size_change(photo: np.ndarray) -> None:
    image = Image(rgb=photo, alpha=np.ones(photo.shape[:2], np.float32))
    bigger = image.with_rgb(np.zeros((192, 256, 3), np.float32))
    assert bigger.alpha is not None and bigger.alpha.shape == (192, 256)


def test_cmyk_jpeg_loads_as_rgb(tmp_path: Path, rgb8: np.ndarray) -> None:
    PILImage.fromarray(rgb8).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    image = load_image(tmp_path / "c.jpg")
    assert image.rgb.shape == (96, 128, 3) and image.icc_profile is None
    assert np.abs(image.rgb * 255 - rgb8).mean() < 8


def test_palette_with_transparency(tmp_path: Path, rgb8: np.ndarray) -> None:
    pal = PILImage.fromarray(rgb8).quantize(16)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    image = load_image(tmp_path / "p.png")
    assert image.alpha is not None and image.alpha.min() == 0.0 and image.alpha.max() == 1.0


def test_bmp_and_webp_read(tmp_path: Path, rgb8: np.ndarray) -> None:
    PILImage.fromarray(rgb8).save(tmp_path / "a.bmp")
    PILImage.fromarray(rgb8).save(tmp_path / "a.webp", lossless=True)
    for name in ("a.bmp", "a.webp"):
        assert np.array_equal(np.round(load_image(tmp_path / name).rgb * 255), rgb8)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_icc_profile_is_kept(tmp_path: Path, rgb8: np.ndarray, suffix: str) -> None:
    PILImage.fromarray(rgb8).save(tmp_path / f"icc{suffix}", icc_profile=SRGB)
    image = load_image(tmp_path / f"icc{suffix}")
    assert image.icc_profile == SRGB
    save_image(tmp_path / f"out{suffix}", image)
    assert PILImage.open(tmp_path / f"out{suffix}").info.get("icc_profile") == SRGB


def test_icc_profile_is_kept_at_16_bits(tmp_path: Path) -> None:
    image = Image(rgb=np.full((8, 8, 3), 0.3, np.float32), bit_depth=16, icc_profile=SRGB)
    save_image(tmp_path / "deep.png", image)
    assert PILImage.open(tmp_path / "deep.png").info.get("icc_profile") == SRGB
    assert load_image(tmp_path / "deep.png").bit_depth == 16


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pil(tmp_path: Path, rgb8: np.ndarray, orientation: int) -> None:
    pil = PILImage.fromarray(rgb8)
    exif = pil.getexif()
    exif[0x0112] = orientation
    pil.save(tmp_path / "o.png", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "o.png")))
    image = load_image(tmp_path / "o.png")
    assert np.array_equal(np.round(image.rgb * 255).astype(np.uint8), expected)
    save_image(tmp_path / "o_out.png", image)
    reread = PILImage.open(tmp_path / "o_out.png")
    assert reread.getexif().get(0x0112, 1) == 1  # saved upright, flag reset


def _bad_files(tmp_path: Path, rgb8: np.ndarray) -> dict[str, tuple[Path, str]]:
    buffer = io.BytesIO()
    PILImage.fromarray(rgb8).save(buffer, format="JPEG")
    jpeg = buffer.getvalue()
    buffer = io.BytesIO()
    PILImage.fromarray(rgb8).save(buffer, format="PNG")
    png = buffer.getvalue()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rgb8.astype(np.float32) / 255, photometric="rgb")
    float_tiff = buffer.getvalue()
    files = {
        "empty.png": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (png[: len(png) // 2], "truncated"),
        "corrupt.png": (png[:40] + os.urandom(200), "corrupt"),
        "notes.png": (b"this is not an image\n" * 10, "not an image"),
        "truncated.tif": (float_tiff[: len(float_tiff) // 2], "truncated"),
    }
    made = {}
    for name, (payload, message) in files.items():
        (tmp_path / name).write_bytes(payload)
        made[name] = (tmp_path / name, message)
    return made


def test_bad_files_give_one_clear_line(tmp_path: Path, rgb8: np.ndarray) -> None:
    for name, (path, message) in _bad_files(tmp_path, rgb8).items():
        with pytest.raises(VlirError) as info:
            load_image(path)
        text = info.value.one_line()
        assert message in text, (name, text)
        assert name in text and "\n" not in text


def test_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(VlirError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(VlirError, match="folder"):
        load_image(tmp_path)


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    PILImage.new("L", (4000, 3000)).save(tmp_path / "big.png")
    with pytest.raises(VlirError, match="--max-pixels"):
        load_image(tmp_path / "big.png", max_pixels=10_000_000)
    assert load_image(tmp_path / "big.png", max_pixels=12_000_000).width == 4000


def test_save_never_overwrites_without_permission(tmp_path: Path, photo: np.ndarray) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(VlirError, match="already exists"):
        save_image(target, photo)
    assert target.read_bytes() == b"precious"
    save_image(target, photo, overwrite=True)
    assert load_image(target).rgb.shape == photo.shape
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp files left


def test_save_refuses_unknown_format(tmp_path: Path, photo: np.ndarray) -> None:
    with pytest.raises(VlirError, match="cannot write"):
        save_image(tmp_path / "out.xyz", photo)


def test_jpeg_drops_alpha_with_a_warning(tmp_path: Path, photo: np.ndarray) -> None:
    image = Image(rgb=photo, alpha=np.ones(photo.shape[:2], np.float32))
    with pytest.warns(UserWarning, match="alpha"):
        save_image(tmp_path / "a.jpg", image)
    assert PILImage.open(tmp_path / "a.jpg").mode == "RGB"


def test_tensor_round_trip(photo: np.ndarray, tmp_path: Path) -> None:
    tensor = Image(rgb=photo).to_tensor()
    assert tuple(tensor.shape) == (1, 3, 96, 128)
    save_image(tmp_path / "t.png", tensor)
    assert np.abs(load_image(tmp_path / "t.png").rgb - photo).max() <= 0.5 / 255 + 1e-6


def test_expand_inputs_and_plan_outputs(tmp_path: Path, rgb8: np.ndarray) -> None:
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.jpg", "b.png"]
    assert [p.name for p in expand_inputs([str(tmp_path / "*.png")])] == ["b.png"]
    with pytest.raises(VlirError, match="no such file"):
        expand_inputs([tmp_path / "missing.png"])
    single = plan_outputs([tmp_path / "a.jpg"], tmp_path / "out.png", overwrite=False)
    assert single == [(tmp_path / "a.jpg", tmp_path / "out.png")]
    many = plan_outputs(expand_inputs([tmp_path]), tmp_path / "outdir", overwrite=False)
    assert [dst.name for _, dst in many] == ["a.jpg", "b.png"]
    with pytest.raises(VlirError, match="is an input"):
        plan_outputs([tmp_path / "a.jpg"], tmp_path / "a.jpg", overwrite=False)
    other = tmp_path / "sub"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"x")
    with pytest.raises(VlirError, match="both be written"):
        plan_outputs([tmp_path / "a.jpg", other / "a.jpg"], tmp_path / "o", overwrite=False)
