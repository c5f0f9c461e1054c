"""Text towers: MiniLM as shipped, LoRA through peft, and a tiny local CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vlir.errors import VlirError
from vlir.text import CLIPTextEncoder, MiniLMTextEncoder, load_text_encoder


@pytest.fixture(scope="module")
def minilm() -> MiniLMTextEncoder:
    return MiniLMTextEncoder()


def test_minilm_tokens_and_pooled(minilm: MiniLMTextEncoder) -> None:
    with torch.no_grad():
        encoding = minilm(["remove the rain", "denoise with sigma 25, it is a cat"])
    assert encoding.tokens.shape[0] == 2 and encoding.tokens.shape[2] == 384
    assert encoding.mask.shape == encoding.tokens.shape[:2]
    assert torch.allclose(encoding.pooled.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_minilm_embeds_meaning(minilm: MiniLMTextEncoder) -> None:
    with torch.no_grad():
        a, b, c = minilm(["get rid of the grain", "remove the noise", "a castle by a lake"]).pooled
    assert float(a @ b) > float(a @ c) + 0.1


def test_lora_trains_only_adapters_and_can_be_switched_off() -> None:
    encoder = MiniLMTextEncoder()
    texts = ["a noisy photo of a cat"]
    with torch.no_grad():
        before = encoder(texts).pooled
    encoder.add_lora(rank=4, alpha=8)
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    with torch.no_grad():
        assert torch.allclose(encoder(texts).pooled, before, atol=1e-6)  # B starts at zero
    optimizer = torch.optim.SGD([p for p in encoder.parameters() if p.requires_grad], lr=1.0)
    encoder(texts).pooled.sum().backward()
    optimizer.step()
    with torch.no_grad():
        after = encoder(texts).pooled
        with encoder.without_lora():
            base = encoder(texts).pooled
    assert not torch.allclose(after, before, atol=1e-4)
    assert torch.allclose(base, before, atol=1e-6)
    assert set(encoder.lora_state_dict()) and all("lora_" in k for k in encoder.lora_state_dict())


def make_tiny_clip(folder: Path) -> Path:
    """A random-initialised CLIP (text + vision) with a word-level tokenizer, saved locally."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

    words = [
        "a",
        "photo",
        "of",
        "cat",
        "dog",
        "noisy",
        "blurry",
        "remove",
        "the",
        "rain",
        "denoise",
        "with",
        "sigma",
    ]
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    vocab["<bos>"], vocab["<eos>"] = len(vocab), len(vocab) + 1
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>",
        special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="<bos>",
        eos_token="<eos>",
    )
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 32,
            "projection_dim": 16,
            "eos_token_id": vocab["<eos>"],
            "bos_token_id": vocab["<bos>"],
            "pad_token_id": 0,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
            "projection_dim": 16,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_tiny_clip_text_backend(tmp_path: Path) -> None:
    folder = make_tiny_clip(tmp_path / "clip")
    encoder = load_text_encoder(str(folder))
    assert isinstance(encoder, CLIPTextEncoder) and encoder.dim == 16
    with torch.no_grad():
        encoding = encoder(["a noisy photo of a cat", "remove the rain"])
    assert encoding.pooled.shape == (2, 16) and encoding.tokens.shape[2] == 32
    encoder.add_lora(rank=2, alpha=4)
    assert any("lora_" in n for n, p in encoder.named_parameters() if p.requires_grad)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "clip"


def test_unknown_text_encoder() -> None:
    with pytest.raises(VlirError):
        load_text_encoder("/nonexistent/encoder")


def test_minilm_folder_can_be_pointed_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vlir.text.encoder import minilm_path

    monkeypatch.setenv("VLIR_MINILM", str(tmp_path))
    with pytest.raises(VlirError, match="VLIR_MINILM"):
        minilm_path()
    (tmp_path / "config.json").write_text("{}")
    assert minilm_path() == tmp_path


def test_cached_encoder_matches_the_tower(minilm: MiniLMTextEncoder) -> None:
    from vlir.text import CachedTextEncoder

    cached = CachedTextEncoder(minilm, capacity=3)
    texts = ["remove all degradation", "a cat on a sofa under a window", "denoise with sigma 25"]
    for batch in (texts, texts[::-1] + texts[:1], ["remove all degradation", "dehaze"]):
        want, got = minilm(batch), cached(batch)
        assert got.tokens.shape == want.tokens.shape
        torch.testing.assert_close(got.mask, want.mask)
        torch.testing.assert_close(got.pooled, want.pooled, atol=1e-5, rtol=1e-4)
        real = want.mask[..., None].bool()
        torch.testing.assert_close(got.tokens * real, want.tokens * real, atol=1e-4, rtol=1e-4)
    assert len(cached.entries) <= 3  # the capacity bounds memory: it starts over when full


def test_cached_base_encodings_ignore_training_lora() -> None:
    from vlir.text import CachedTextEncoder

    tower = MiniLMTextEncoder()
    tower.add_lora(rank=4)
    with torch.no_grad():
        for name, parameter in tower.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)  # a LoRA that has learned something
    texts = ["a hazy harbour", "remove the rain but keep the blur"]
    with tower.without_lora():
        base = tower(texts).pooled
    cached = CachedTextEncoder(tower, base=True)(texts).pooled
    torch.testing.assert_close(cached, base, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(tower(texts).pooled, base, atol=1e-3)
