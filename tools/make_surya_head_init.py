"""make_surya_head_init.py - how the reference initialises a new fine-tuning head.

The downstream models (downstream_examples/solar_flare_forcasting/models.py:
HelioSpectformer1D, ar_segmentation/models.py: HelioSpectformer2D) build
their head after HelioSpectFormer.__init__, so it keeps torch's module
defaults. Initial values are random, so the fixture records what a test can
compare across random streams: per head tensor its shape, whether it is all
zero, its largest magnitude and its standard deviation.

    PYTHONPATH=/path/to/Surya:/path/to/Surya/downstream_examples python3 tools/make_surya_head_init.py

Writes tests/fixtures/surya_head_init/init.json.
"""
import json
import os
import sys
import types

import torch

import surya.models.helio_spectformer  # noqa: E402,F401  (imports timm before torchvision is stubbed)

sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))  # imported, unused, by the flare models
sys.modules["torchvision"].models = types.ModuleType("torchvision.models")
sys.modules.setdefault("torchvision.models", sys.modules["torchvision"].models)

from solar_flare_forcasting.models import HelioSpectformer1D  # noqa: E402
from ar_segmentation.models import HelioSpectformer2D  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "surya_head_init", "init.json")
BACKBONE = dict(img_size=32, patch_size=4, in_chans=13, embed_dim=64, time_embedding={"type": "linear", "time_dim": 1, "n_queries": None},
                depth=4, n_spectral_blocks=2, num_heads=4, mlp_ratio=4.0, drop_rate=0.0, window_size=2, dp_rank=4, finetune=True)
POOL = dict(global_average_pooling=False, global_max_pooling=False, attention_pooling=False, transformer_pooling=False,
            global_class_token=True, penultimate_linear_layer=True, dropout=0.0)


def stats(model):
    rows = {}
    for name, p in model.named_parameters():
        if name.split(".")[0] in ("linear", "unembed", "cls_token"):
            v = p.detach().double()
            rows[name] = {"shape": list(p.shape), "zero": bool((v == 0).all()), "max_abs": v.abs().max().item(),
                          "std": v.std(unbiased=False).item()}
    return rows


torch.manual_seed(0)
one_d = HelioSpectformer1D(**BACKBONE, nglo=1, dtype=torch.float32, num_outputs=1, config={"model": POOL})
two_d = HelioSpectformer2D(**BACKBONE, dtype=torch.float32, config={"model": {"ft_unembedding_type": "linear", "ft_out_chans": 1}})
cases = {"1d_class_token": {"kwargs": {**BACKBONE, "nglo": 1, "num_outputs": 1, "model": POOL}, "tensors": stats(one_d)},
         "2d_linear_decoder": {"kwargs": {**BACKBONE, "ft_out_chans": 1}, "tensors": stats(two_d)}}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
print("wrote", OUT)
