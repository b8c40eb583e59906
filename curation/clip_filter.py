"""CLIP text similarity for the open-ended problem types (paper 2.2: "low semantic consistency (measured by
CLIP) between the generated answer and the reference answer" is filtered out).

The model is any open_clip model: a pretrained one in production (``ViT-L-14`` / ``openai``), or ``tiny-clip``,
a small randomly initialised CLIP built from a config (seeded, so scores are reproducible) for the tiny
profile and tests — it only recognises near-identical text, which is why the tiny profile's threshold is high.
Loaded lazily, once per process.
"""

from __future__ import annotations

import numpy as np

from videorft.clip_models import load_clip


def text_similarity(a: list[str], b: list[str], model_name: str, pretrained: str | None = None,
                    batch_size: int = 256) -> np.ndarray:
    """Cosine similarity of CLIP text embeddings, pairwise ``a[i]`` vs ``b[i]``."""
    if len(a) != len(b):
        raise ValueError("text_similarity needs two lists of equal length")
    if not a:
        return np.zeros(0, dtype=np.float32)
    import torch

    model, tokenizer, _ = load_clip(model_name, pretrained)
    out = []
    with torch.inference_mode():
        for i in range(0, len(a), batch_size):
            ea = model.encode_text(tokenizer(a[i:i + batch_size]), normalize=True)
            eb = model.encode_text(tokenizer(b[i:i + batch_size]), normalize=True)
            out.append((ea * eb).sum(dim=-1).float().numpy())
    return np.concatenate(out)
