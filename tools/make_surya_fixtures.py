"""make_surya_fixtures.py - more Surya golden cases, made with the reference code.

The shared fixtures cover Surya-1.0's configuration (linear time embedding,
window 2, dynamic projection) and the downstream heads. These cases cover the
other constructor options: the perceiver time embedding with its Perceiver
decoder, the relative-position bias of the window attention, an odd token grid
(odd DFT sizes) with window 3 and no dynamic projection, ensembles (the noise
the reference draws is recorded as inputs/noise), the learned flow in both
phases (its own pre-training, and frozen under the network), other widths.

Each case directory has the layout of shared/fixtures (config.json with every
keyword, weights/inputs/outputs/grads.safetensors; kind "surya").

Needs torch, einops, timm and the reference package (NASA-IMPACT/Surya) on PYTHONPATH:
    PYTHONPATH=/path/to/Surya python3 tools/make_surya_fixtures.py
The tests only read the files it writes.
"""
import json
import os
from itertools import chain

import torch
from safetensors.torch import save_file

from surya.models.helio_spectformer import HelioSpectFormer

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "surya_gen")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

BASE = dict(img_size=32, patch_size=4, in_chans=13, embed_dim=32,
            time_embedding={"type": "linear", "time_dim": 1, "n_queries": None},
            depth=3, n_spectral_blocks=1, num_heads=2, mlp_ratio=4.0, drop_rate=0.0, window_size=2, dp_rank=2,
            learned_flow=False, use_latitude_in_learned_flow=False, init_weights=False, checkpoint_layers=[],
            rpe=False, ensemble=None, finetune=False, nglo=0, dtype=None)

CASES = {
    "perceiver": dict(time_embedding={"type": "perceiver", "time_dim": 2, "n_queries": 2}),
    "rpe": dict(img_size=48, embed_dim=48, num_heads=3, dp_rank=3, rpe=True),
    "odd_grid_window3": dict(img_size=36, window_size=3, dp_rank=0, num_heads=4, depth=2),
    "ensemble": dict(ensemble=3, dp_rank=2),
    "learned_flow": dict(learned_flow=True, time_embedding={"type": "linear", "time_dim": 2, "n_queries": None}),
    "learned_flow_pretraining": dict(learned_flow=True),
    "learned_flow_latitude": dict(learned_flow=True, use_latitude_in_learned_flow=True),
    "deep_two_times": dict(time_embedding={"type": "linear", "time_dim": 2, "n_queries": None}, depth=5, n_spectral_blocks=2,
                           embed_dim=64, num_heads=8, dp_rank=1, patch_size=8, img_size=64),
}


def randomise(model, seed):
    """Perturb every parameter so that no path is trivially zero (as the shared fixtures)."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_((0.02 if p.ndim >= 2 else 0.1) * torch.randn(p.shape, generator=g))


def make_case(name, extra, seed):
    kwargs = {**BASE, **extra}
    torch.manual_seed(seed)
    model = HelioSpectFormer(**kwargs)
    randomise(model, seed)
    model.eval()
    if kwargs["learned_flow"] and "pretraining" not in name:  # phase 2: the flow frozen, the network learns the residual
        for prm in model.learned_flow_model.parameters():
            prm.requires_grad_(False)
    inter = {}
    model.embedding.register_forward_hook(lambda m, i, o: inter.__setitem__("inter/embedding_out", o.detach().contiguous().clone()))
    blocks = list(chain(model.backbone.blocks_spectral_gating, model.backbone.blocks_attention))
    for k, blk in enumerate(blocks):
        blk.register_forward_hook(lambda m, i, o, k=k: inter.__setitem__(f"inter/block{k}_out", o.detach().contiguous().clone()))
    model.unembed.register_forward_pre_hook(lambda m, i: inter.__setitem__("inter/unembed_in", i[0].detach().contiguous().clone()))

    B, T = 2, kwargs["time_embedding"]["time_dim"]
    g = torch.Generator().manual_seed(seed + 7)
    ts = torch.randn(B, kwargs["in_chans"], T, kwargs["img_size"], kwargs["img_size"], generator=g)
    if kwargs["learned_flow"]:
        # smooth images, as the Sun's: warping white noise turns float32 rounding of the flow into
        # output differences of 1e-5 (both sides round; neither is wrong)
        n, s = kwargs["img_size"], kwargs["img_size"] // 4
        coarse = torch.randn(B * kwargs["in_chans"] * T, 1, s, s, generator=g)
        ts = torch.nn.functional.interpolate(coarse, size=(n, n), mode="bilinear", align_corners=False).reshape(ts.shape)
    dt = torch.tensor([[-60.0 * (T - 1 - t) for t in range(T)]] * B)
    target = torch.randn(B, kwargs["in_chans"], kwargs["img_size"], kwargs["img_size"], generator=g)
    batch = {"ts": ts, "time_delta_input": dt}
    if kwargs["use_latitude_in_learned_flow"]:
        batch["forecast_latitude"] = (torch.rand(B, 1, generator=g) - 0.5) * 60
    drawn = []  # the ensembles' noise, drawn inside SpectFormer.forward: recorded for refcheck to inject
    real_randn = torch.randn

    def recording_randn(*args, **kw):
        z = real_randn(*args, **kw)
        drawn.append(z.detach().clone())
        return z

    torch.randn = recording_randn
    try:
        out = model(batch)
    finally:
        torch.randn = real_randn
    if kwargs["ensemble"]:
        target = torch.randn(out.shape, generator=g)
    loss = torch.nn.functional.mse_loss(out, target)
    loss.backward()

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "weights.safetensors"))
    inputs = {"ts": ts, "time_delta_input": dt, "target": target}
    if drawn:
        inputs["noise"] = drawn[0].contiguous()
    if "forecast_latitude" in batch:
        inputs["forecast_latitude"] = batch["forecast_latitude"]
    save_file(inputs, os.path.join(d, "inputs.safetensors"))
    inter = {k: v.contiguous() for k, v in inter.items()}
    save_file({"output": out.detach().contiguous(), "loss": loss.detach().reshape(1), **inter}, os.path.join(d, "outputs.safetensors"))
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(grads, os.path.join(d, "grads.safetensors"))
    config = {
        "case": name, "kind": "surya", "seed": seed,
        "description": f"HelioSpectFormer with {json.dumps(extra)} on top of a small base; made by tools/make_surya_fixtures.py",
        "model": {"family": "surya", "file": "surya/models/helio_spectformer.py", "class": "HelioSpectFormer", "kwargs": kwargs},
        "mode": "eval",
        "tolerances": {"outputs": 1e-5, "intermediates": 1e-5, "loss": 1e-5, "grads": 1e-4},
        "loss": {"type": "mse", "definition": "torch.nn.functional.mse_loss(output, target)"},
        "trainable": [n for n, p in model.named_parameters() if p.requires_grad],
        "info": {"params_without_grad": [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]},
        "environment": {"torch": torch.__version__},
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    print(f"{name}: loss {loss.item():.6f}, {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    for i, (name, extra) in enumerate(CASES.items()):
        make_case(name, extra, 3100 + i)
