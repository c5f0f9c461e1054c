"""vlir: vision-language guided, all-in-one image restoration."""

from vlir.errors import VlirError
from vlir.io import Image, load_image, save_image

__version__ = "0.1.0"
__all__ = ["Image", "VlirError", "__version__", "load_image", "save_image"]
