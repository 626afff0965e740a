"""ckpt_to_safetensors.py - convert a PyTorch checkpoint (.ckpt/.pt) to safetensors.

    python3 tools/ckpt_to_safetensors.py aurora-0.25-small-pretrained.ckpt aurora-small.safetensors
    python3 tools/ckpt_to_safetensors.py --air-pollution aurora-0.4-air-pollution.ckpt aurora-ap.safetensors

The tensors are written as they are (float32 stays float32). aur_aurora_load
applies the reference's adaptations of old checkpoints itself (fused
embeddings and heads, "net." prefixes, the Wave renames, history padding);
the AirPollution file's many-step rewrite is done here instead, by calling
the reference's own function, so --air-pollution needs the aurora package.

Needs torch and safetensors; never needed at run time.
"""
import argparse

import torch
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--air-pollution", action="store_true", help="apply AuroraAirPollution's checkpoint adaptation")
    ap.add_argument("--patch-size", type=int, default=3, help="patch size for --air-pollution (the preset's is 3)")
    args = ap.parse_args()

    d = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    if isinstance(d, dict) and "state_dict" in d and isinstance(d["state_dict"], dict):
        d = d["state_dict"]
    if args.air_pollution:
        from aurora.model.compat import _adapt_checkpoint_air_pollution, _adapt_checkpoint_pretrained

        d = _adapt_checkpoint_pretrained(args.patch_size, d)
        d = _adapt_checkpoint_air_pollution(args.patch_size, d)
    tensors = {k: v.detach().contiguous() for k, v in d.items() if isinstance(v, torch.Tensor)}
    skipped = [k for k, v in d.items() if not isinstance(v, torch.Tensor)]
    save_file(tensors, args.output, metadata={"format": "pt", "source": args.checkpoint})
    n = sum(t.numel() for t in tensors.values())
    print(f"{args.output}: {len(tensors)} tensors, {n} elements" + (f"; skipped non-tensors {skipped}" if skipped else ""))


if __name__ == "__main__":
    main()
