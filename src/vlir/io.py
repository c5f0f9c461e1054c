"""Reading and writing photos without losing what the user cares about.

Restoration works on RGB floats in [0, 1], but a photo is more than that: it
can be stored sideways with an EXIF orientation flag, carry an alpha channel,
16 bits per channel, an ICC profile, or be grey. ``load_image`` turns every such
file into an upright RGB array plus the facts needed to write the result back
the same way; ``save_image`` writes it back atomically and never replaces an
existing file unless asked.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageCms, UnidentifiedImageError

from vlir.errors import VlirError

if TYPE_CHECKING:
    import torch

DEFAULT_MAX_PIXELS = 120_000_000
"""Refuse larger images (decompression bombs); users raise it with ``--max-pixels``."""

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
_EXIF_ORIENTATION = 0x0112
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic, BigTIFF
_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma


@dataclass(frozen=True)
class Image:
    """An upright photo as restoration sees it, plus what is needed to save it back.

    ``rgb`` is float32 [H, W, 3] in [0, 1] in the file's own colour space (grey
    files are repeated into three channels); ``alpha`` is float32 [H, W] or None.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    grey: bool = False
    icc_profile: bytes | None = None
    exif: bytes | None = None
    source: Path | None = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    def with_rgb(self, rgb: np.ndarray | torch.Tensor) -> Image:
        """The same photo with new pixels (e.g. restored); alpha follows a size change."""
        new_rgb = as_hwc(rgb)
        alpha = self.alpha
        if alpha is not None and alpha.shape != new_rgb.shape[:2]:
            import cv2

            size = (new_rgb.shape[1], new_rgb.shape[0])
            alpha = np.clip(cv2.resize(alpha, size, interpolation=cv2.INTER_CUBIC), 0, 1)
        return replace(self, rgb=new_rgb, alpha=alpha)

    def to_tensor(self) -> torch.Tensor:
        """[1, 3, H, W] float32, the layout every vlir model takes."""
        return to_tensor(self.rgb)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """[H, W, 3] -> [1, 3, H, W] of the same dtype, the layout every vlir model takes."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]


def as_hwc(pixels: np.ndarray | torch.Tensor) -> np.ndarray:
    """Accept [H, W, 3] arrays or [3, H, W] / [1, 3, H, W] tensors; return float32 [H, W, 3]."""
    if not isinstance(pixels, np.ndarray):
        tensor = pixels.detach().cpu().float()
        if tensor.ndim == 4:
            if tensor.shape[0] != 1:
                raise ValueError(f"expected one image, got a batch of {tensor.shape[0]}")
            tensor = tensor[0]
        pixels = tensor.permute(1, 2, 0).numpy()
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {array.shape}")
    return array


def is_grey(rgb: np.ndarray) -> bool:
    """Whether [H, W, 3] holds one plane three times: a grey photo read as RGB."""
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    )


def luma(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] -> [H, W, 1]: the grey a grey photo is written back as (BT.601 luma)."""
    return (rgb @ _GREY_WEIGHTS)[..., None]


def grey_rgb(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] -> [H, W, 3] its luma in every channel: the photo as a grey file of it reads
    back (R = G = B, which the engine degrades as one plane)."""
    return np.repeat(luma(rgb), 3, axis=2)


# ----------------------------------------------------------------------------- loading


def load_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read any PNG/JPEG/TIFF/BMP/WebP into an upright :class:`Image`.

    Every way a file can be unusable becomes a one-line :class:`VlirError`, so
    a batch run can report it and go on.
    """
    path = Path(path)
    data = _read_bytes(path)
    with _pil_bomb_check_off():
        try:
            pil = PILImage.open(io.BytesIO(data))
        except UnidentifiedImageError:
            if data[:4] in _TIFF_MAGIC:  # e.g. float RGB, which PIL cannot open
                return _load_tiff(path, data, max_pixels)
            raise VlirError(
                f"{path}: not an image vlir can read (PNG, JPEG, TIFF, BMP or WebP expected)"
            ) from None
        except Exception as exc:  # PIL raises many types for broken headers
            raise VlirError(f"{path}: corrupt image header ({_reason(exc)})") from None
        _check_size(path, *pil.size, max_pixels)
        try:
            pil.load()
        except Exception as exc:
            raise VlirError(f"{path}: truncated or corrupt image data ({_reason(exc)})") from None

        exif = pil.getexif()
        orientation = int(exif.get(_EXIF_ORIENTATION, 1) or 1)
        icc_profile = pil.info.get("icc_profile") or None
        if _is_high_bit_depth(pil, data):
            pixels, alpha, grey = _decode_16bit(path, pil, data)
            bit_depth = 16
        else:
            pixels, alpha, grey, icc_profile = _decode_8bit(pil, icc_profile)
            bit_depth = 8

    pixels = _orient(pixels, orientation)
    alpha = None if alpha is None else _orient(alpha, orientation)
    if grey:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    exif_bytes = None
    if len(exif):
        exif[_EXIF_ORIENTATION] = 1  # the pixels are upright now
        exif_bytes = exif.tobytes()
    return Image(
        rgb=np.ascontiguousarray(pixels, dtype=np.float32),
        alpha=None if alpha is None else np.ascontiguousarray(alpha, dtype=np.float32),
        bit_depth=bit_depth,
        grey=grey,
        icc_profile=icc_profile,
        exif=exif_bytes,
        source=path,
    )


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    """Before decoding: an empty frame, or a decompression bomb."""
    if width <= 0 or height <= 0:
        raise VlirError(f"{path}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise VlirError(
            f"{path}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} (possible decompression bomb)",
            hint="raise it with --max-pixels if the file is trusted",
        )


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise VlirError(f"{path}: no such file")
    if path.is_dir():
        raise VlirError(f"{path}: is a folder, not an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VlirError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise VlirError(f"{path}: file is empty (0 bytes)")
    return data


@contextlib.contextmanager
def _pil_bomb_check_off():
    """vlir applies its own pixel limit (with a clearer message and a CLI option)."""
    saved = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            yield
    finally:
        PILImage.MAX_IMAGE_PIXELS = saved


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


def _is_high_bit_depth(pil: PILImage.Image, data: bytes) -> bool:
    if pil.mode.startswith("I;16") or pil.mode == "I":
        return True
    if pil.format == "PNG" and len(data) > 25 and data[12:16] == b"IHDR":
        return data[24] == 16
    if pil.format == "TIFF":
        bits = pil.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(bits) > 8
    return False


def _decode_16bit(
    path: Path, pil: PILImage.Image, data: bytes
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """16-bit files go through OpenCV/tifffile: PIL flattens 16-bit RGB to 8 bits."""
    if pil.format == "TIFF":
        array, _ = _tiff_pixels(path, data)  # PIL read the orientation
    else:
        import cv2

        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if array is None:
            array = np.asarray(pil)  # e.g. 16-bit grey that OpenCV cannot decode
        elif array.ndim == 3:
            array = array[..., [2, 1, 0, 3][: array.shape[2]]]  # BGR(A) -> RGB(A)
    # tifffile keeps the stored type (16 or 32 bits); OpenCV and PIL give 16 bits
    return _split_channels(_unit_range(array, by_type=pil.format == "TIFF"))


def _unit_range(array: np.ndarray, *, by_type: bool) -> np.ndarray:
    """float32 in [0, 1]: floats clipped (NaN black); integers divided by their type's
    largest value (``by_type``) or by 16 bits'."""
    if array.dtype.kind == "f":
        return np.clip(np.nan_to_num(array.astype(np.float32)), 0, 1)
    top = np.iinfo(array.dtype).max if by_type else 65535
    return np.clip(array.astype(np.float64) / top, 0, 1).astype(np.float32)


def _tiff_pixels(path: Path, data: bytes, max_pixels: int | None = None) -> tuple[np.ndarray, int]:
    """(the first page of a TIFF as stored, channels last; its orientation tag).
    ``max_pixels``: its size is checked before it is decoded (PIL checked it otherwise)."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            if max_pixels is not None:
                _check_size(path, page.imagewidth, page.imagelength, max_pixels)
            array = page.asarray()
            separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
            cmyk = page.photometric == tifffile.PHOTOMETRIC.SEPARATED
            tag = page.tags.get(_EXIF_ORIENTATION)
            orientation = int(tag.value) if tag is not None else 1
    except VlirError:
        raise
    except Exception as exc:  # tifffile raises many types for broken files
        raise VlirError(f"{path}: truncated or corrupt TIFF ({_reason(exc)})") from None
    if separate and array.ndim == 3:
        array = np.moveaxis(array, 0, -1)
    if cmyk:
        raise VlirError(f"{path}: high-bit-depth CMYK TIFF is not supported; convert it to RGB")
    if array.ndim not in (2, 3) or array.dtype.kind not in "uif" or array.dtype.itemsize > 8:
        raise VlirError(f"{path}: a TIFF of {array.dtype} {array.shape} is not a photo vlir reads")
    return array, orientation


def _load_tiff(path: Path, data: bytes, max_pixels: int) -> Image:
    """A TIFF PIL cannot open (float or 32-bit RGB, as scientific and HDR tools write):
    floats are read as [0, 1] and written back at 16 bits, the deepest vlir writes."""
    array, orientation = _tiff_pixels(path, data, max_pixels)
    pixels, alpha, grey = _split_channels(_unit_range(array, by_type=True))
    pixels = _orient(pixels, orientation)
    alpha = None if alpha is None else np.ascontiguousarray(_orient(alpha, orientation))
    if grey:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return Image(
        rgb=np.ascontiguousarray(pixels),
        alpha=alpha,
        bit_depth=16,
        grey=grey,
        source=path,
    )


def _split_channels(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """[H, W] or [H, W, C] in [0, 1] -> (grey [H, W] or RGB [H, W, 3], alpha, grey?)."""
    if scaled.ndim == 2:
        return scaled, None, True
    channels = scaled.shape[2]
    if channels == 1:
        return scaled[..., 0], None, True
    if channels == 2:
        return scaled[..., 0], scaled[..., 1], True
    if channels == 3:
        return scaled, None, False
    return scaled[..., :3], scaled[..., 3], False


def _decode_8bit(
    pil: PILImage.Image, icc_profile: bytes | None
) -> tuple[np.ndarray, np.ndarray | None, bool, bytes | None]:
    mode = pil.mode
    if mode == "CMYK":
        rgb_pil = _cmyk_to_rgb(pil, icc_profile)
        # The CMYK profile cannot describe RGB pixels; the result is sRGB.
        return np.asarray(rgb_pil, np.float32) / 255.0, None, False, None
    if mode == "P":
        mode_to = "RGBA" if "transparency" in pil.info else "RGB"
        pil = pil.convert(mode_to)
    elif mode == "PA" or mode == "RGBa":
        pil = pil.convert("RGBA")
    elif mode == "La":
        pil = pil.convert("LA")
    elif mode == "1":
        pil = pil.convert("L")
    elif mode == "F":
        array = np.clip(np.asarray(pil, np.float32), 0, 1)
        return array, None, True, icc_profile
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        pil = pil.convert("RGB")  # YCbCr, LAB, HSV, ...
    array = np.asarray(pil, np.float32) / 255.0
    if pil.mode == "L":
        return array, None, True, icc_profile
    if pil.mode == "LA":
        return array[..., 0], array[..., 1], True, icc_profile
    if pil.mode == "RGBA":
        return array[..., :3], array[..., 3], False, icc_profile
    return array, None, False, icc_profile


def _cmyk_to_rgb(pil: PILImage.Image, icc_profile: bytes | None) -> PILImage.Image:
    if icc_profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            target = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(pil, source, target, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile should not lose the photo: fall back to PIL's formula
    return pil.convert("RGB")


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the pixels are upright, as viewers show them."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return np.swapaxes(array, 0, 1)
    if orientation == 6:
        return np.rot90(array, k=-1)
    if orientation == 7:
        return np.swapaxes(array, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(array, k=1)
    return array


# ----------------------------------------------------------------------------- saving


def save_image(
    path: str | os.PathLike[str],
    image: Image | np.ndarray | torch.Tensor,
    *,
    overwrite: bool = False,
    quality: int = 95,
) -> Path:
    """Write atomically (temp file + rename); refuse to replace a file unless ``overwrite``.

    An :class:`Image` is written back as it came in: grey stays grey, alpha is
    re-attached, 16-bit stays 16-bit where the format allows, the ICC profile
    and EXIF (upright) are kept.
    """
    path = Path(path)
    if not isinstance(image, Image):
        image = Image(rgb=as_hwc(image))
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise VlirError(
            f"{path}: cannot write '{path.suffix or '(no suffix)'}'; "
            f"use one of {', '.join(sorted(WRITE_FORMATS))}"
        )
    if path.is_dir():
        raise VlirError(f"{path}: is a folder; give a file name")
    check_writable(path, overwrite=overwrite)
    encoded = _encode(image, fmt, quality)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VlirError(f"{path.parent}: cannot create folder ({exc.strerror or exc})") from None
    write_atomic(path, encoded, overwrite=overwrite)
    return path


def _exists(path: Path) -> VlirError:
    return VlirError(f"{path}: already exists", hint="pass --overwrite to replace it")


def check_writable(path: Path, *, overwrite: bool) -> None:
    """Refuse early, before any work, to write over an existing file."""
    if path.exists() and not overwrite:
        raise _exists(path)


def write_atomic(path: Path, payload: bytes, *, overwrite: bool) -> None:
    """Write via a temp file in the same folder, so a crash never leaves half a file."""
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, then renamed)
            dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
        )
    except OSError as exc:
        raise VlirError(f"{path}: cannot write ({exc.strerror or exc})") from None
    tmp = Path(handle.name)
    try:
        with handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic and fails if the name appeared meanwhile
        except FileExistsError:
            raise _exists(path) from None
        except OSError:
            if path.exists():  # a filesystem without hard links: check, then rename
                raise _exists(path) from None
            os.replace(tmp, path)
    except OSError as exc:
        raise VlirError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _encode(image: Image, fmt: str, quality: int) -> bytes:
    rgb = np.clip(np.nan_to_num(image.rgb, nan=0.0), 0.0, 1.0)
    colour = luma(rgb) if image.grey else rgb
    alpha = image.alpha
    if alpha is not None and fmt == "JPEG":
        warnings.warn("JPEG has no alpha channel: transparency is dropped", stacklevel=3)
        alpha = None
    planes = colour if alpha is None else np.concatenate([colour, alpha[..., None]], axis=2)
    if image.bit_depth == 16 and fmt in ("PNG", "TIFF"):
        pixels16 = np.round(planes * 65535.0).astype(np.uint16)
        if fmt == "PNG":
            return _encode_png16(pixels16, image.icc_profile, image.exif)
        return _encode_tiff16(pixels16, image.icc_profile)
    pixels8 = np.round(planes * 255.0).astype(np.uint8)
    return _encode_8bit(pixels8, fmt, quality, image.icc_profile, image.exif)


def _encode_8bit(
    pixels: np.ndarray, fmt: str, quality: int, icc: bytes | None, exif: bytes | None
) -> bytes:
    channels = pixels.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    pil = PILImage.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode)
    if mode == "LA" and fmt in ("BMP", "WEBP"):
        pil = pil.convert("RGBA")  # these formats have no grey+alpha mode
    options: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = int(quality)
    if fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        if icc:
            options["icc_profile"] = icc
        if exif:
            options["exif"] = exif
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _encode_png16(pixels: np.ndarray, icc: bytes | None, exif: bytes | None) -> bytes:
    import cv2

    channels = pixels.shape[2]
    if channels == 2:  # PNG grey+alpha at 16 bits is not writable by OpenCV: use RGBA
        grey = pixels[..., :1]
        pixels = np.concatenate([grey, grey, grey, pixels[..., 1:]], axis=2)
        channels = 4
    bgr = pixels[..., 0] if channels == 1 else pixels[..., [2, 1, 0, 3][:channels]]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(bgr))
    if not ok:
        raise VlirError("could not encode the 16-bit PNG")
    chunks = []
    if icc:
        chunks.append((b"iCCP", b"icc\x00\x00" + zlib.compress(icc)))
    if exif:
        chunks.append((b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    return _png_insert_chunks(encoded.tobytes(), chunks)


def _png_insert_chunks(png: bytes, chunks: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Put ancillary chunks right after IHDR (where iCCP must sit, before IDAT)."""
    ihdr_end = 8 + 8 + 13 + 4  # signature + (length, type) + IHDR data + CRC
    extra = b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in chunks
    )
    return png[:ihdr_end] + extra + png[ihdr_end:]


def _encode_tiff16(pixels: np.ndarray, icc: bytes | None) -> bytes:
    import tifffile

    channels = pixels.shape[2]
    photometric = "minisblack" if channels <= 2 else "rgb"
    options: dict[str, Any] = {"photometric": photometric}
    if channels in (2, 4):
        options["extrasamples"] = ("unassalpha",)
    if icc:
        options["iccprofile"] = icc
    data = pixels[..., 0] if channels == 1 else pixels
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, **options)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- many files


def expand_inputs(patterns: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files, folders (their images, sorted) and globs, as a user types them."""
    found: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        path = Path(text)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in READ_SUFFIXES))
        elif path.exists():
            found.append(path)
        elif glob.has_magic(text):
            found.extend(sorted(Path(p) for p in glob.glob(text) if Path(p).is_file()))
        else:
            raise VlirError(f"{text}: no such file or folder")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise VlirError("no input images found")
    return unique


def plan_outputs(
    inputs: Sequence[Path], output: str | os.PathLike[str], *, overwrite: bool
) -> list[tuple[Path, Path]]:
    """Pair each input with its output path.

    One input and an output with an image suffix is a file; otherwise the
    output is a folder and each result keeps its input's name. Refuses to
    write over an input or two inputs onto one output.
    """
    output = Path(output)
    if len(inputs) == 1 and output.suffix.lower() in WRITE_FORMATS and not output.is_dir():
        pairs = [(inputs[0], output)]
    else:
        if output.exists() and not output.is_dir():
            raise VlirError(f"{output}: several inputs need an output folder, not a file")
        pairs = [(src, output / src.name) for src in inputs]
    seen: dict[Path, Path] = {}
    input_set = {p.resolve() for p in inputs}
    for src, dst in pairs:
        key = dst.resolve()
        if key in seen:
            raise VlirError(f"{src} and {seen[key]} would both be written to {dst}")
        seen[key] = src
        if key in input_set and not overwrite:
            raise VlirError(f"{dst}: is an input; refusing to overwrite it without --overwrite")
    return pairs
