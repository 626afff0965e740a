"""make_op_fixtures.py - golden data for every op of aurora.h, from PyTorch.

Writes tests/fixtures/ops/ops.safetensors and cases.json. For each case C:
  C/<input>       the inputs (float32),
  C/out           the op's output,
  C/dout          a random tensor of out's shape; the loss is sum(out * dout),
  C/grad/<input>  d loss / d input for each input listed in "grads".
Scalar outputs (losses, full reductions) are stored with shape [1].

Needs torch, numpy and safetensors; run from the repository root:
    python3 tools/make_op_fixtures.py
The tests never need Python: the files it writes are committed.
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

torch.manual_seed(1234)
torch.set_num_threads(1)

OUT_DIR = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "ops")
tensors, cases = {}, []


def randn(*shape, scale=1.0):
    return torch.randn(*shape, dtype=torch.float32) * scale


def case(name, op, inputs, fn, grads=None, args=None):
    """Runs fn(**inputs) with autograd and records the case."""
    grads = list(inputs) if grads is None else grads
    leaves = {k: v.clone().requires_grad_(k in grads) for k, v in inputs.items()}
    out = fn(**leaves)
    if out.dim() == 0:
        out = out.reshape(1)
    dout = randn(*out.shape)
    (out * dout).sum().backward()
    for k, v in inputs.items():
        tensors[f"{name}/{k}"] = v.contiguous()
    tensors[f"{name}/out"] = out.detach().contiguous()
    tensors[f"{name}/dout"] = dout
    for k in grads:
        tensors[f"{name}/grad/{k}"] = leaves[k].grad.contiguous()
    cases.append({"name": name, "op": op, "inputs": list(inputs), "grads": grads, "args": args or {}})


def attention(q, k, v, mask=None, scale=None):
    """softmax(q k^T * scale + mask) v, written out (not F.scaled_dot_product_attention)."""
    s = (q @ k.transpose(-1, -2)) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s + mask
    return torch.softmax(s, dim=-1) @ v


def mask_0_100(*shape):
    return torch.where(torch.rand(*shape) < 0.3, torch.tensor(-100.0), torch.tensor(0.0))


# ---- linear and matrix products ----
case("linear", "linear", {"x": randn(2, 3, 5), "w": randn(4, 5), "b": randn(4)}, lambda x, w, b: F.linear(x, w, b))
case("linear_nobias", "linear", {"x": randn(6, 5), "w": randn(3, 5)}, lambda x, w: F.linear(x, w))
case("matmul", "matmul", {"a": randn(2, 3, 4, 5), "b": randn(2, 3, 5, 6)}, lambda a, b: a @ b, args={"ta": 0, "tb": 0})
case("matmul_tb", "matmul", {"a": randn(3, 4, 5), "b": randn(3, 6, 5)}, lambda a, b: a @ b.transpose(-1, -2),
     args={"ta": 0, "tb": 1})
case("matmul_ta", "matmul", {"a": randn(3, 5, 4), "b": randn(3, 5, 6)}, lambda a, b: a.transpose(-1, -2) @ b,
     args={"ta": 1, "tb": 0})

# ---- elementwise with broadcasting ----
case("add_same", "add", {"a": randn(3, 4), "b": randn(3, 4)}, lambda a, b: a + b)
case("add_bias", "add", {"a": randn(2, 3, 4), "b": randn(4)}, lambda a, b: a + b)
case("add_mid", "add", {"a": randn(2, 3, 4), "b": randn(2, 1, 4)}, lambda a, b: a + b)
case("add_lead", "add", {"a": randn(2, 3, 4), "b": randn(3, 1)}, lambda a, b: a + b)
case("sub_bias", "sub", {"a": randn(2, 3, 4), "b": randn(3, 4)}, lambda a, b: a - b)
case("mul_bias", "mul", {"a": randn(2, 3, 4), "b": randn(4)}, lambda a, b: a * b)
case("mul_mid", "mul", {"a": randn(2, 3, 4), "b": randn(2, 1, 4)}, lambda a, b: a * b)
case("scale", "scale", {"x": randn(3, 5)}, lambda x: x * 0.37, args={"s": 0.37})

# ---- normalisation and activations ----
case("layernorm", "layernorm", {"x": randn(3, 4, 8), "w": randn(8), "b": randn(8)},
     lambda x, w, b: F.layer_norm(x, (8,), w, b, 1e-5), args={"eps": 1e-5})
case("layernorm_noaffine", "layernorm", {"x": randn(5, 6)}, lambda x: F.layer_norm(x, (6,), eps=1e-6), args={"eps": 1e-6})
case("gelu", "gelu", {"x": randn(4, 7, scale=3)}, lambda x: F.gelu(x))
case("gelu_tanh", "gelu_tanh", {"x": randn(4, 7, scale=3)}, lambda x: F.gelu(x, approximate="tanh"))
case("silu", "silu", {"x": randn(4, 7, scale=3)}, lambda x: F.silu(x))
case("sigmoid", "sigmoid", {"x": randn(4, 7, scale=3)}, lambda x: torch.sigmoid(x))
case("log", "log", {"x": 0.1 + 3 * torch.rand(4, 7)}, lambda x: torch.log(x))
case("sin", "sin", {"x": randn(4, 7, scale=3)}, lambda x: torch.sin(x))
case("cos", "cos", {"x": randn(4, 7, scale=3)}, lambda x: torch.cos(x))
case("softmax", "softmax", {"x": randn(3, 4, 7, scale=2)}, lambda x: torch.softmax(x, dim=-1))

# ---- attention ----
case("sdpa", "sdpa", {"q": randn(2, 3, 5, 4), "k": randn(2, 3, 6, 4), "v": randn(2, 3, 6, 4)},
     lambda q, k, v: attention(q, k, v), args={"scale": None})
case("sdpa_mask", "sdpa", {"q": randn(2, 3, 5, 4), "k": randn(2, 3, 6, 4), "v": randn(2, 3, 6, 7), "mask": mask_0_100(5, 6)},
     lambda q, k, v, mask: attention(q, k, v, mask, 0.3), grads=["q", "k", "v"], args={"scale": 0.3})
case("sdpa_bias", "sdpa", {"q": randn(2, 3, 5, 4), "k": randn(2, 3, 6, 4), "v": randn(2, 3, 6, 4), "mask": randn(3, 5, 6)},
     lambda q, k, v, mask: attention(q, k, v, mask), args={"scale": None})


def window_attention(q, k, v, mask):
    """Swin layout: batch = (B=2, nW=3) flattened; mask (nW, 1, N, N) per window, shared by heads."""
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = (s.view(2, 3, 2, 4, 4) + mask.view(1, 3, 1, 4, 4)).view(6, 2, 4, 4)
    return torch.softmax(s, dim=-1) @ v


case("sdpa_window", "sdpa", {"q": randn(6, 2, 4, 3), "k": randn(6, 2, 4, 3), "v": randn(6, 2, 4, 3),
                             "mask": mask_0_100(3, 1, 4, 4)},
     window_attention, grads=["q", "k", "v"], args={"scale": None, "mask_mode": "window"})

# ---- shape ops ----
case("concat", "concat", {"a": randn(2, 3, 4), "b": randn(2, 5, 4), "c": randn(2, 1, 4)},
     lambda a, b, c: torch.cat([a, b, c], dim=1), args={"axis": 1})
case("slice", "slice", {"x": randn(3, 7, 2)}, lambda x: x[:, 2:6], args={"axis": 1, "start": 2, "len": 4})
# F.pad takes (before, after) pairs from the last dim backwards
case("pad", "pad", {"x": randn(2, 3, 4)}, lambda x: F.pad(x, (2, 0, 1, 2, 0, 0)),
     args={"pads": [[0, 0], [1, 2], [2, 0]], "value": 0.0})
case("permute", "permute", {"x": randn(2, 3, 4, 5)}, lambda x: x.permute(0, 2, 3, 1).contiguous(), args={"perm": [0, 2, 3, 1]})
case("reshape", "reshape", {"x": randn(2, 3, 4)}, lambda x: x.reshape(6, 4), args={"shape": [6, 4]})
case("roll", "roll", {"x": randn(2, 5, 6)}, lambda x: torch.roll(x, shifts=(2, -3), dims=(1, 2)), args={"shifts": [0, 2, -3]})

case("clamp", "clamp", {"x": randn(5, 6)}, lambda x: x.clamp(min=-0.5, max=0.7), args={"lo": -0.5, "hi": 0.7})
case("expand", "expand", {"x": randn(3, 1, 5)}, lambda x: x.expand(2, 3, 4, 5).contiguous(), args={"shape": [2, 3, 4, 5]})

case("atan2", "atan2", {"y": randn(3, 4), "x": randn(3, 4)}, lambda y, x: torch.atan2(y, x))
case("remainder", "remainder", {"x": randn(3, 4, scale=500)}, lambda x: torch.remainder(x, 360.0), args={"m": 360.0})
xn = randn(3, 4)
xn[0, 1], xn[2, 2], xn[1, 3] = float("nan"), float("inf"), -float("inf")
case("nan_to_num", "nan_to_num", {"x": xn}, lambda x: torch.nan_to_num(x, 0.25), args={"nan": 0.25})

# ---- reductions ----
case("sum_axis", "sum", {"x": randn(3, 4, 5)}, lambda x: x.sum(dim=1), args={"axis": 1, "keepdim": 0})
case("sum_all", "sum", {"x": randn(3, 4)}, lambda x: x.sum(), args={"axis": None})
case("mean_axis", "mean", {"x": randn(3, 4, 5)}, lambda x: x.mean(dim=2, keepdim=True), args={"axis": 2, "keepdim": 1})
case("mean_all", "mean", {"x": randn(3, 4)}, lambda x: x.mean(), args={"axis": None})
case("max_axis", "max", {"x": randn(3, 4, 5)}, lambda x: torch.max(x, dim=1).values, args={"axis": 1, "keepdim": 0})

# ---- losses ----
case("mse", "mse", {"pred": randn(3, 4), "target": randn(3, 4)}, lambda pred, target: F.mse_loss(pred, target))
case("mae", "mae", {"pred": randn(3, 4), "target": randn(3, 4)}, lambda pred, target: F.l1_loss(pred, target))
case("bce_logits", "bce_logits", {"logits": randn(4, 3, scale=2), "target": torch.rand(4, 3)},
     lambda logits, target: F.binary_cross_entropy_with_logits(logits, target))
case("bce_logits_posw", "bce_logits",
     {"logits": randn(4, 3, scale=2), "target": (torch.rand(4, 3) < 0.5).float(), "pos_weight": 0.5 + 1.5 * torch.rand(3)},
     lambda logits, target, pos_weight: F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight),
     grads=["logits"], args={"pos_weight": True})
labels = torch.randint(0, 4, (5,)).float()
case("cross_entropy", "cross_entropy", {"logits": randn(5, 4, scale=2), "labels": labels},
     lambda logits, labels: F.cross_entropy(logits, labels.long()), grads=["logits"],
     args={"ignore_index": -100, "label_smoothing": 0.0})
labels = torch.randint(0, 4, (6,)).float()
labels[1] = -100
case("cross_entropy_ignore", "cross_entropy", {"logits": randn(6, 4, scale=2), "labels": labels},
     lambda logits, labels: F.cross_entropy(logits, labels.long(), ignore_index=-100), grads=["logits"],
     args={"ignore_index": -100, "label_smoothing": 0.0})
case("cross_entropy_smooth", "cross_entropy", {"logits": randn(5, 4, scale=2), "labels": torch.randint(0, 4, (5,)).float()},
     lambda logits, labels: F.cross_entropy(logits, labels.long(), label_smoothing=0.1), grads=["logits"],
     args={"ignore_index": -100, "label_smoothing": 0.1})
labels = torch.randint(0, 4, (6,)).float()
labels[3] = -100
case("cross_entropy_smooth_ignore", "cross_entropy", {"logits": randn(6, 4, scale=2), "labels": labels},
     lambda logits, labels: F.cross_entropy(logits, labels.long(), ignore_index=-100, label_smoothing=0.2),
     grads=["logits"], args={"ignore_index": -100, "label_smoothing": 0.2})

if __name__ == "__main__":
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "ops.safetensors")
    # one metadata key only: safetensors writes several keys in a random order, so the file bytes would vary
    save_file(tensors, path, metadata={"generator": f"tools/make_op_fixtures.py, torch {torch.__version__}"})
    with open(os.path.join(OUT_DIR, "cases.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
    # independent check: re-read both files; every name the cases use is there, in float32
    back = load_file(path)
    with open(os.path.join(OUT_DIR, "cases.json")) as f:
        listed = json.load(f)["cases"]
    for c in listed:
        names = [f"{c['name']}/{k}" for k in c["inputs"]] + [f"{c['name']}/out", f"{c['name']}/dout"]
        names += [f"{c['name']}/grad/{k}" for k in c["grads"]]
        for n in names:
            assert n in back and back[n].dtype == torch.float32, n
        assert back[f"{c['name']}/out"].shape == back[f"{c['name']}/dout"].shape, c["name"]
    print(f"{len(cases)} cases, {len(tensors)} tensors, {os.path.getsize(path)} bytes -> {path}")
