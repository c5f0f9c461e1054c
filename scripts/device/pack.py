"""Pack what a training run needs onto a machine that has no package index.

The lent GPU machine (see the tool library's ``device`` entry) receives only the
repository plus up to 64 MiB of carried, git-ignored folders. Training the
restorer or perception there needs the BSD400 training photos and the MiniLM
text tower, which together are ~120 MB as shipped. This script writes ``carry/``
(git-ignored):

- ``carry/data``: BSD400 re-encoded *losslessly* with ``jpegtran -optimize``
  (identical decoded pixels, checked) and the training captions;
- ``carry/minilm``: MiniLM in float16 without its unused pooler, and with the
  word-embedding table cut to the token ids that training text can contain (the
  prompt grammar, its paraphrases, the flaw words of low-quality captions and the
  training captions). ``unpack`` rebuilds a full float32 folder whose other rows
  hold the ``[UNK]`` vector.

    python scripts/device/pack.py pack            # here, before device runs
    python scripts/device/pack.py unpack OUT_DIR  # there; then VLIR_MINILM=OUT_DIR
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
CARRY = ROOT / "carry"
SHARED = ROOT.parent / "shared" / "data"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
TOKENIZER_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def training_texts(seed: int, count: int) -> list[str]:
    """Texts as the restorer and perception trainers draw them: requests, exact prompts,
    numberless wordings, and the flaw words of low-quality captions (captions are added
    apart)."""
    from vlir.data.requests import low_quality_caption, sample_request
    from vlir.degradations import DegradationPipeline
    from vlir.perception.labels import combination_text

    rng = np.random.default_rng(seed)
    pipeline = DegradationPipeline(max_ops=3)
    texts = []
    for _ in range(count):
        record = pipeline.sample(rng)
        request = sample_request(record, "", rng, p_semantic=0.0)
        texts.append(request.text)
        texts.append(record.prompt().format())
        texts.append(combination_text(record.names))
        texts.append(low_quality_caption("", record.names, rng))
    return texts


def pack_data() -> None:
    source = SHARED / "train" / "BSD400"
    target = CARRY / "data" / "train" / "BSD400"
    target.mkdir(parents=True, exist_ok=True)
    lossless = shutil.which("jpegtran") is not None
    from vlir.io import load_image

    for path in sorted(source.iterdir()):
        out = target / path.name
        if lossless and path.suffix.lower() in (".jpg", ".jpeg"):
            with open(out, "wb") as handle:
                subprocess.run(
                    ["jpegtran", "-copy", "all", "-optimize", "-progressive", str(path)],
                    stdout=handle,
                    check=True,
                )
            if not np.array_equal(load_image(path).rgb, load_image(out).rgb):
                raise SystemExit(f"{path.name}: re-encoding changed pixels")
        else:
            shutil.copy2(path, out)
    (CARRY / "data" / "captions").mkdir(parents=True, exist_ok=True)
    shutil.copy2(SHARED / "captions" / "train.tsv", CARRY / "data" / "captions" / "train.tsv")


def pack_minilm() -> None:
    from transformers import AutoTokenizer

    from vlir.data import load_captions
    from vlir.text.encoder import minilm_path

    source = minilm_path()
    target = CARRY / "minilm"
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(source)
    captions = list(load_captions(SHARED / "captions" / "train.tsv").values())
    texts = captions + training_texts(seed=0, count=50_000)
    used = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 4096):
        for ids in tokenizer(texts[start : start + 4096])["input_ids"]:
            used.update(ids)
    # A fresh draw measures whether the kept vocabulary covers what training will say.
    fresh = training_texts(seed=12345, count=20_000)
    missing = sum(1 for ids in tokenizer(fresh)["input_ids"] for token in ids if token not in used)
    kept = torch.tensor(sorted(used), dtype=torch.int64)
    weights = load_file(str(source / "model.safetensors"))
    packed = {
        key: value.to(torch.float16)
        for key, value in weights.items()
        if not key.startswith("pooler.") and key != WORD_EMBEDDINGS
    }
    packed["kept_rows"] = weights[WORD_EMBEDDINGS][kept].to(torch.float16)
    packed["kept_ids"] = kept
    packed["vocab_size"] = torch.tensor([weights[WORD_EMBEDDINGS].shape[0]])
    save_file(packed, str(target / "packed.safetensors"))
    for name in TOKENIZER_FILES:
        shutil.copy2(source / name, target / name)
    size = (target / "packed.safetensors").stat().st_size / 1e6
    print(f"minilm: {len(kept)} of {weights[WORD_EMBEDDINGS].shape[0]} token rows kept,")
    print(f"  {size:.1f} MB; fresh-draw tokens outside them: {missing}")


def unpack_minilm(packed_dir: Path, out: Path) -> None:
    """Rebuild a loadable MiniLM folder (float32; unkept rows hold the [UNK] vector)."""
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    packed = load_file(str(packed_dir / "packed.safetensors"))
    kept, rows = packed.pop("kept_ids"), packed.pop("kept_rows").float()
    vocab_size = int(packed.pop("vocab_size")[0])
    unk = AutoTokenizer.from_pretrained(packed_dir).unk_token_id
    table = rows[(kept == unk).nonzero()[0, 0]].repeat(vocab_size, 1)
    table[kept] = rows
    weights = {key: value.float() for key, value in packed.items()}
    weights[WORD_EMBEDDINGS] = table
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    for name in TOKENIZER_FILES:
        shutil.copy2(packed_dir / name, out / name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pack")
    unpack = sub.add_parser("unpack")
    unpack.add_argument("out", type=Path)
    unpack.add_argument("--packed", type=Path, default=CARRY / "minilm")
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack_data()
        pack_minilm()
        total = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
        print(f"carry/: {total / 2**20:.1f} MiB")
    else:
        unpack_minilm(args.packed, args.out)


if __name__ == "__main__":
    sys.exit(main())
