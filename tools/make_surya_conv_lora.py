"""make_surya_conv_lora.py - PEFT's LoRA on Surya's Conv2d patch embedding, as a golden case.

PEFT adapts every Linear and Conv2d whose name is a target or ends in
".target": the bare target "proj" takes the patch embedding's Conv2d
(embedding.patch_embed.proj) as well as each attention's output Linear
(attn.proj). Its Conv2d adapter is lora_A, a convolution like the base's
(r, in, kh, kw), then lora_B, a 1x1 convolution (out, r, 1, 1).

    PYTHONPATH=/path/to/Surya python3 tools/make_surya_conv_lora.py

Writes tests/fixtures/surya_conv_lora/: config.json (the model's kwargs, the
modules PEFT adapted, tolerances), adapter/ (PEFT's save_pretrained),
weights.safetensors (the PEFT model's state dict), inputs.safetensors (ts,
target), outputs.safetensors (output, loss) and grads.safetensors (the
adapters' gradients of the MSE loss, in PEFT's names).
"""
import json
import os

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file

from surya.models.helio_spectformer import HelioSpectFormer

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "surya_conv_lora")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

KWARGS = dict(img_size=32, patch_size=4, in_chans=13, embed_dim=32,
              time_embedding={"type": "linear", "time_dim": 2, "n_queries": None},
              depth=3, n_spectral_blocks=1, num_heads=2, mlp_ratio=4.0, drop_rate=0.0, window_size=2, dp_rank=2,
              learned_flow=False, use_latitude_in_learned_flow=False, init_weights=False, checkpoint_layers=[],
              rpe=False, ensemble=None, finetune=False, nglo=0, dtype=None)
LORA = dict(r=4, lora_alpha=8, target_modules=["proj", "fc1"], lora_dropout=0.0, bias="none")

torch.manual_seed(4100)
model = HelioSpectFormer(**KWARGS)
g = torch.Generator().manual_seed(4101)
with torch.no_grad():  # no path trivially zero, as the other fixtures
    for p in model.parameters():
        p.add_((0.02 if p.ndim >= 2 else 0.1) * torch.randn(p.shape, generator=g))
model = get_peft_model(model, LoraConfig(**LORA))
with torch.no_grad():  # lora_B starts at zero: give the adapters an effect
    for n, p in model.named_parameters():
        if "lora_" in n:
            p.copy_(0.05 * torch.randn(p.shape, generator=g))
model.eval()
adapted = sorted({n.split(".lora_")[0].removeprefix("base_model.model.") for n, _ in model.named_parameters() if "lora_A" in n})

B, T = 1, 2
ts = torch.randn(B, 13, T, 32, 32, generator=g)
target = torch.randn(B, 13, 32, 32, generator=g)
out = model({"ts": ts, "time_delta_input": torch.tensor([[-60.0, 0.0]])})
loss = torch.nn.functional.mse_loss(out, target)
loss.backward()

os.makedirs(OUT, exist_ok=True)
model.save_pretrained(os.path.join(OUT, "adapter"))
save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, os.path.join(OUT, "weights.safetensors"))
save_file({"ts": ts, "target": target}, os.path.join(OUT, "inputs.safetensors"))
save_file({"output": out.detach().contiguous(), "loss": loss.detach().reshape(1)}, os.path.join(OUT, "outputs.safetensors"))
save_file({n: p.grad.contiguous() for n, p in model.named_parameters() if "lora_" in n}, os.path.join(OUT, "grads.safetensors"))
config = {"case": "surya_conv_lora", "kind": "surya+peft", "model": {"class": "HelioSpectFormer", "kwargs": KWARGS}, "lora": LORA,
          "adapted": adapted, "tolerances": {"outputs": 1e-5, "loss": 1e-5, "grads": 1e-4},
          "loss": "torch.nn.functional.mse_loss(output, target)", "environment": {"torch": torch.__version__}}
with open(os.path.join(OUT, "config.json"), "w") as f:
    json.dump(config, f, indent=1)
print(f"adapted {len(adapted)} modules: {adapted}; loss {loss.item():.6f}")
