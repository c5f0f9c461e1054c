"""Text towers (MiniLM shipped, Hugging Face CLIP optional) with LoRA."""

from vlir.text.cache import CachedTextEncoder
from vlir.text.encoder import (
    CLIPTextEncoder,
    MiniLMTextEncoder,
    TextEncoder,
    TextEncoding,
    load_text_encoder,
)

__all__ = [
    "CLIPTextEncoder",
    "CachedTextEncoder",
    "MiniLMTextEncoder",
    "TextEncoder",
    "TextEncoding",
    "load_text_encoder",
]
