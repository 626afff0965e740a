"""make_torch_ckpt_fixtures.py - checkpoints as torch.save writes them, for the C reader.

The released checkpoints (aurora-0.25-pretrained.ckpt, Surya's .pt) are
torch.save'd state dicts: zip archives of a pickle and the storages. This
saves the tiny fixture models' weights the same way (F32 with the "net."
prefix of Aurora's checkpoints; BF16; Surya's as Parameters inside a
training checkpoint), tensors that share a storage or start inside one, and
the files the reader must refuse: a transposed view, a pickle calling
os.system, the legacy (pre-zip) format.

    python3 tools/make_torch_ckpt_fixtures.py       (needs torch, safetensors)

Writes tests/fixtures/torch_ckpt/.
"""
import collections
import os

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")
OUT = os.path.join(FIX, "torch_ckpt")


class Evil:
    """What weights_only refuses: unpickling it would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo unpickled",))


def main():
    os.makedirs(OUT, exist_ok=True)
    aurora = load_file(os.path.join(FIX, "aurora_tiny", "weights.safetensors"))
    torch.save(collections.OrderedDict(("net." + k, v) for k, v in aurora.items()), os.path.join(OUT, "aurora_tiny_net.ckpt"))
    torch.save({k: v.to(torch.bfloat16) for k, v in aurora.items()}, os.path.join(OUT, "aurora_tiny_bf16.ckpt"))
    surya = load_file(os.path.join(FIX, "surya_tiny", "weights.safetensors"))
    model = collections.OrderedDict((k, torch.nn.Parameter(v, requires_grad=not k.endswith("running_mean"))) for k, v in surya.items())
    torch.save({"epoch": 3, "lr": 1e-4, "model": model, "note": "a training checkpoint", "steps": [1, 2, (3, None)]},
               os.path.join(OUT, "surya_tiny.pt"))
    a = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    views = {"a": a, "row": a[1], "tail": a.view(-1)[5:], "ints": torch.arange(-2, 3), "flags": torch.tensor([True, False, True]),
             "half": torch.tensor([0.5, -2.0], dtype=torch.float16), "empty": torch.zeros(0, 3), "scalar": torch.tensor(7.0)}
    torch.save(views, os.path.join(OUT, "views.pt"))
    save_file({k: v.contiguous().clone() for k, v in views.items()}, os.path.join(OUT, "views.safetensors"))
    torch.save({"t": a.t()}, os.path.join(OUT, "transposed.pt"))
    torch.save({"w": a, "x": Evil()}, os.path.join(OUT, "evil.pt"))
    torch.save({"w": a}, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save({"n": torch.arange(1.0, 4.0)._neg_view()}, os.path.join(OUT, "neg_view.pt"))
    # a Lightning-style checkpoint: what weights_only builds beside the state dict (sets, sizes, dtypes, big ints, bytes)
    torch.save({"state_dict": {"a": a, "row": a[1]}, "epoch": 2, "hyper_parameters": {"tags": {"x", "y"}, "size": torch.Size([2, 3]),
                "dtype": torch.bfloat16, "seed": 2 ** 70, "blob": b"\x00\x01", "device": torch.device("cpu")}},
               os.path.join(OUT, "lightning.ckpt"), pickle_protocol=2)
    save_file({"a": a.clone(), "row": a[1].clone()}, os.path.join(OUT, "lightning.safetensors"))
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
