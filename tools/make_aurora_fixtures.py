"""make_aurora_fixtures.py - more Aurora golden cases, made with the reference code.

The shared fixtures cover the plain model, its LoRA and a two-step rollout with
new variables. These cases cover the other constructor options a fine-tuner
meets: level-conditioned embeddings and heads, a separate decoder Perceiver,
positive-variable clamping over a rollout, dynamic and atmospheric static
inputs (with the indexing-bug simulation), LoRA modes "all" and "from_second",
two and four backbone stages, deeper Perceivers, odd grids, T=1, 2-D lat/lon.

Each case directory has the layout of shared/fixtures (config.json with every
keyword, weights/inputs/outputs/grads.safetensors). The encodings the
reference used are stored as inject/pos_encode and inject/scale_encode: the
scale encoding is chaotic (spec trap 1), so refcheck feeds them to the model.

Needs torch and the reference package (microsoft/aurora) on PYTHONPATH:
    PYTHONPATH=/path/to/aurora python3 tools/make_aurora_fixtures.py
The tests only read the files it writes.
"""
import dataclasses
import inspect
import json
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import torch
from safetensors.torch import save_file

import aurora
from aurora import Aurora, AuroraAirPollution, AuroraWave, Batch, Metadata, rollout
from aurora.normalisation import level_to_str, locations, scales

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "aurora_gen")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def kwargs_json(model_kwargs, cls=Aurora):
    """Every constructor keyword of Aurora with its value (the subclass's defaults first), JSON-ready."""
    sig = inspect.signature(Aurora.__init__)
    sub = inspect.signature(cls.__init__).parameters
    out = {}
    for name, p in sig.parameters.items():
        if name == "self" or p.kind == p.VAR_KEYWORD:
            continue
        default = sub[name].default if name in sub else p.default
        v = model_kwargs.get(name, default)
        if isinstance(v, timedelta):
            v = {"timedelta_seconds": v.total_seconds()}
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, dict):
            v = {k: list(x) for k, x in v.items()}
        out[name] = v
    return out


def randomise(model, seed):
    """Perturb every parameter so that no path is trivially zero (as the shared fixtures)."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_B"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif p.ndim >= 2:
                p.add_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def stats(v, level=None):
    key = v if level is None else f"{v}_{level_to_str(level)}"
    return locations[key], scales[key]


POSITIVE = set()  # variables drawn as positive fields (concentrations)


def field(g, shape, v, levels=None):
    """loc + scale * N(0, 1) in physical units, per level for atmospheric variables. Positive variables
    are loc + scale * (0.5 + |N(0, 1)|): physical concentrations, and away from the 1e-4 where the
    AirPollution log transform's slope (1/z) would amplify rounding in every gradient."""
    x = torch.randn(shape, generator=g)
    if v in POSITIVE:
        x = 0.5 + x.abs()
    if levels is None:
        lo, sc = stats(v)
        return lo + sc * x
    lo = torch.tensor([stats(v, l)[0] for l in levels]).view(-1, 1, 1)
    sc = torch.tensor([stats(v, l)[1] for l in levels]).view(-1, 1, 1)
    return lo + sc * x


def make_batch(g, surf, static, atmos, levels, B, T, H, W, times, latlon_2d=False):
    lat = torch.from_numpy(np.linspace(90, -90, H).astype(np.float32))
    lon = torch.from_numpy(np.linspace(0, 360, W, endpoint=False).astype(np.float32))
    if latlon_2d:
        lat, lon = lat[:, None].expand(H, W).contiguous(), lon[None, :].expand(H, W).contiguous()
    return Batch(
        surf_vars={v: field(g, (B, T, H, W), v) for v in surf},
        static_vars={v: field(g, (H, W), v) for v in static},
        atmos_vars={v: field(g, (B, T, len(levels), H, W), v, levels) for v in atmos},
        metadata=Metadata(lat=lat, lon=lon, time=tuple(times), atmos_levels=tuple(levels)),
    )


def norm(x, v, levels=None, surf_stats=None):
    """Aurora's normalisation, surf_stats overrides included (as the model normalises)."""
    if levels is None:
        lo, sc = (surf_stats or {}).get(v, stats(v))
        return (x - lo) / sc
    lo = torch.tensor([stats(v, l)[0] for l in levels]).view(-1, 1, 1)
    sc = torch.tensor([stats(v, l)[1] for l in levels]).view(-1, 1, 1)
    return (x - lo) / sc


def finite_mse(a, b):
    """MSE over the cells where both are finite (AuroraWave predicts NaN where there are no waves)."""
    m = torch.isfinite(a) & torch.isfinite(b)
    return ((a - b)[m] ** 2).mean()


def step_loss(pred, target, levels, surf_stats):
    terms = [finite_mse(norm(pred.surf_vars[v], v, surf_stats=surf_stats), norm(target[f"surf/{v}"], v, surf_stats=surf_stats))
             for v in pred.surf_vars]
    terms += [finite_mse(norm(pred.atmos_vars[v], v, levels), norm(target[f"atmos/{v}"], v, levels)) for v in pred.atmos_vars]
    return torch.stack(terms).mean()


def make_case(name, model_kwargs, B=1, T=2, H=17, W=24, levels=(250, 500, 850), steps=1, latlon_2d=False, seed=0,
              surf=None, static=None, atmos=None, register=None, cls=Aurora):
    torch.manual_seed(seed)
    model = cls(**model_kwargs)
    POSITIVE.clear()
    POSITIVE.update(model.positive_surf_vars if cls is AuroraAirPollution else ())
    POSITIVE.update(model.positive_atmos_vars if cls is AuroraAirPollution else ())
    POSITIVE.update(("mwp", "pp1d", "mpww", "mpts", "mwp1", "mwp2", "wmb") if cls is AuroraWave else ())
    randomise(model, seed)
    model.train()
    surf = surf or list(model.surf_vars)
    static = static or list(model_kwargs.get("static_vars", inspect.signature(cls.__init__).parameters["static_vars"].default
                                             if "static_vars" in inspect.signature(cls.__init__).parameters else ("lsm", "z", "slt")))
    atmos = atmos or list(model.atmos_vars)
    P = model.patch_size
    g = torch.Generator().manual_seed(seed + 2)
    t0 = datetime(2020, 6, 1, 12, tzinfo=timezone.utc)
    times = [t0 + timedelta(hours=7 * b) for b in range(B)]
    batch = make_batch(g, surf, static, atmos, levels, B, T, H, W, times, latlon_2d)
    if "wmb" in batch.static_vars:  # land: a strip with no water depth
        batch.static_vars["wmb"][:, : W // 4] = 0.0
    Hc = H - (H % P)
    out_surf = [v for v in surf if v != "dwi"] + [v for v in ("10u_wave", "10v_wave") if "dwi" in surf and v not in surf]
    targets = [{**{f"surf/{v}": field(g, (B, 1, Hc, W), v) for v in out_surf},
                **{f"atmos/{v}": field(g, (B, 1, len(levels), Hc, W), v, levels) for v in atmos}} for _ in range(steps)]

    captured, inter = {}, {}
    step = [0]
    model.encoder.pos_embed.register_forward_pre_hook(lambda m, a: captured.setdefault("pos", a[0].detach().clone()))
    model.encoder.scale_embed.register_forward_pre_hook(lambda m, a: captured.setdefault("scale", a[0].detach().clone()))
    prefix = (lambda: f"inter/step{step[0]}/") if steps > 1 else (lambda: "inter/")
    model.encoder.register_forward_hook(lambda m, a, o: inter.__setitem__(prefix() + "encoder_out", o.detach().clone()))
    model.backbone.register_forward_hook(lambda m, a, o: inter.__setitem__(prefix() + "backbone_out", o.detach().clone()))

    preds, losses = [], []
    for s, pred in enumerate(rollout(model, batch, steps=steps)):
        preds.append(pred)
        losses.append(step_loss(pred, targets[s], levels, model.surf_stats))
        step[0] = s + 1
    loss = torch.stack(losses).mean()
    loss.backward()

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, os.path.join(d, "weights.safetensors"))
    inputs = {f"surf/{v}": x for v, x in batch.surf_vars.items()}  # as given (rollout() transforms a copy)
    inputs.update({f"static/{v}": x for v, x in batch.static_vars.items()})
    inputs.update({f"atmos/{v}": x for v, x in batch.atmos_vars.items()})
    inputs.update({"meta/lat": batch.metadata.lat, "meta/lon": batch.metadata.lon,
                   "meta/levels": torch.tensor(levels, dtype=torch.float32)})
    for s, tgt in enumerate(targets):
        for k, x in tgt.items():
            inputs[(f"target/step{s}/" if steps > 1 else "target/") + k] = x
    save_file({k: v.contiguous() for k, v in inputs.items()}, os.path.join(d, "inputs.safetensors"))
    D = model_kwargs["embed_dim"]
    outputs = {"loss": loss.detach().reshape(1), "inject/pos_encode": captured["pos"].reshape(-1, D),
               "inject/scale_encode": captured["scale"].reshape(-1, D)}
    outputs.update(inter)
    for s, pred in enumerate(preds):
        pre = f"pred/step{s}/" if steps > 1 else "pred/"
        outputs.update({pre + f"surf/{v}": x.detach() for v, x in pred.surf_vars.items()})
        outputs.update({pre + f"atmos/{v}": x.detach() for v, x in pred.atmos_vars.items()})
        if steps > 1:
            outputs[f"loss_step{s}"] = losses[s].detach().reshape(1)
    save_file({k: v.contiguous() for k, v in outputs.items()}, os.path.join(d, "outputs.safetensors"))
    grads, without = {}, []
    for k, p in model.named_parameters():
        if p.grad is None:
            without.append(k)
            grads[k] = torch.zeros_like(p)
        else:
            grads[k] = p.grad.detach().contiguous()
    save_file(grads, os.path.join(d, "grads.safetensors"))
    config = {
        "case": name, "kind": "aurora",
        "description": "generated by tools/make_aurora_fixtures.py with the reference code (microsoft/aurora)",
        "model": {"family": "aurora", "module": "aurora", "class": cls.__name__, "kwargs": kwargs_json(model_kwargs, cls)},
        "normalisation_registered": register or {},
        "batch": {"surf_vars": surf, "static_vars": static, "atmos_vars": atmos, "atmos_levels": list(levels),
                  "B": B, "T": T, "H": H, "W": W, "H_cropped": Hc,
                  "time_unix": [t.timestamp() for t in times], "rollout_steps": steps},
        "loss": {"definition": "mean over steps of the mean over variables (surface then atmospheric) of the MSE of "
                               "normalised prediction and target"},
        "trainable": "all parameters",
        "tolerances": {"metric": "per tensor: max|ours - ref| / max(max|ref|, 1e-30)", "outputs": 1e-5,
                       "intermediates": 1e-5, "loss": 1e-5, "grads": 1e-4},
        "info": {"params_without_grad": without},
        "environment": {"torch": torch.__version__, "aurora": getattr(aurora, "__version__", "git")},
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    print(f"{name}: loss {loss.item():.6f}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{len(without)} without gradient")


TINY = dict(embed_dim=16, num_heads=2, encoder_num_heads=(2, 4, 8), decoder_num_heads=(8, 4, 2),
            encoder_depths=(2, 2, 2), decoder_depths=(2, 2, 2), window_size=(2, 3, 4), use_lora=False)

if __name__ == "__main__":
    # per-level embeddings and heads; a second decoder Perceiver for u; positive clamps over a 3-step rollout
    make_case("levelcond_separate_positive", dict(TINY, level_condition=(100, 250, 500, 850), separate_perceiver=("u",),
                                                  positive_surf_vars=("10u",), positive_atmos_vars=("q",)),
              steps=3, seed=11)
    # dynamic inputs, statics as atmospheric inputs, the indexing-bug simulation; T=1 with Tmax 2; B=2
    make_case("dynamic_atmos_static", dict(TINY, dynamic_vars=True, atmos_static_vars=True, simulate_indexing_bug=True),
              B=2, T=1, seed=12)
    # LoRA mode "all" with 2 sets over 3 steps (step 2 has none); clamp at the first step
    make_case("lora_all_rollout", dict(TINY, use_lora=True, lora_mode="all", lora_steps=2, clamp_at_first_step=True,
                                       positive_surf_vars=("2t",)), steps=3, seed=13)
    # LoRA "from_second" and stabilise_level_agg over 2 steps
    make_case("lora_from_second", dict(TINY, use_lora=True, lora_mode="from_second", stabilise_level_agg=True), steps=2, seed=14)
    # two stages, deeper Perceivers, patch 3, Ld 3 with a level window of 1, mlp ratio 2.5, 12 h steps, surf_stats
    make_case("two_stages_deep", dict(embed_dim=12, num_heads=3, encoder_num_heads=(2, 4), decoder_num_heads=(4, 2),
                                      encoder_depths=(3, 1), decoder_depths=(1, 3), window_size=(1, 2, 3), latent_levels=3,
                                      patch_size=3, enc_depth=2, dec_depth=2, mlp_ratio=2.5, dec_mlp_ratio=1.5,
                                      timestep=timedelta(hours=12), surf_stats={"2t": (280.0, 20.0)}, use_lora=False),
              H=22, W=27, levels=(300, 700), seed=15)
    # AuroraAirPollution: feature combiners, level conditioning, dynamic and static atmospheric inputs,
    # the separate Perceiver, difference heads and the so2 clamp (LoRA on); B = 1 (the reference's hook breaks for B > 1)
    small_ap = dict(embed_dim=16, num_heads=2, encoder_num_heads=(2, 4, 8), decoder_num_heads=(8, 4, 2),
                    encoder_depths=(2, 2, 2), decoder_depths=(2, 2, 2), window_size=(2, 3, 4))
    make_case("air_pollution", small_ap, H=18, W=27, levels=(500, 850, 1000), steps=2, seed=17, cls=AuroraAirPollution)
    # AuroraWave: dwi/wind -> u/v, absent waves as NaN, density channels, angles as sin/cos, the land mask
    # (wmb <= 0 on a strip); LoRA "from_second" and stabilised level aggregation over 2 steps
    wave_in = ["2t", "10u", "10v", "msl", "swh", "mwd", "mwp", "pp1d", "shww", "mdww", "mpww", "shts", "mdts", "mpts",
               "swh1", "mwd1", "mwp1", "swh2", "mwd2", "mwp2", "wind", "dwi"]
    make_case("wave", dict(small_ap), H=17, W=24, steps=2, seed=18, cls=AuroraWave, surf=wave_in,
              static=["lsm", "z", "slt", "wmb", "lat_mask"])
    # four stages on a small odd grid, 2-D lat/lon
    make_case("four_stages_2d_latlon", dict(embed_dim=8, num_heads=2, encoder_num_heads=(1, 2, 2, 4), decoder_num_heads=(4, 2, 2, 1),
                                            encoder_depths=(2, 2, 2, 2), decoder_depths=(2, 2, 2, 2), window_size=(2, 2, 3),
                                            use_lora=False),
              H=28, W=36, latlon_2d=True, seed=16)
