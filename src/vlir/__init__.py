"""vlir: vision-language guided, all-in-one image restoration."""

from typing import TYPE_CHECKING

from vlir.errors import VlirError
from vlir.io import Image, load_image, save_image

if TYPE_CHECKING:
    from vlir.pipeline import Restorer

__version__ = "0.1.0"
__all__ = ["Image", "Restorer", "VlirError", "__version__", "load_image", "save_image"]


def __getattr__(name: str) -> object:
    """``vlir.Restorer`` without importing torch and the models for every ``import vlir``."""
    if name == "Restorer":
        from vlir.pipeline import Restorer

        return Restorer
    raise AttributeError(f"module 'vlir' has no attribute {name!r}")
