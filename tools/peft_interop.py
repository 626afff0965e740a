"""peft_interop.py - does Python PEFT load an adapter written by lora.h and give the same output?

Run tools/peft_export.c first (see its header); needs torch, peft, einops, timm and the Surya
reference checkout in the SURYA environment variable. Developers only; the tests do not need it."""
import os
SURYA = os.environ.get("SURYA", "/tmp/surya_ref")
import json, sys, torch
sys.path.insert(0, SURYA); sys.path.insert(0, SURYA + "/downstream_examples/solar_flare_forcasting")
from safetensors.torch import load_file
from peft import PeftModel
from models import HelioSpectformer1D
d = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "surya_heads", "flare_class_token")
cfg = json.load(open(d + "/config.json"))
kw = dict(cfg["model"]["kwargs"]); kw.pop("dtype", None)
model = HelioSpectformer1D(**kw)
w = load_file(d + "/weights.safetensors")
base = {k[len("base_model.model."):].replace(".base_layer.", "."): v for k, v in w.items() if ".lora_" not in k}
missing, unexpected = model.load_state_dict(base, strict=False)
peft_model = PeftModel.from_pretrained(model, "/tmp/our_adapter")
peft_model.eval()
ours = load_file("/tmp/our_adapter/adapter_model.safetensors")
sd = peft_model.state_dict()
same = all(torch.equal(sd[k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")], v) for k, v in ours.items())
inp = load_file(d + "/inputs.safetensors")
with torch.no_grad():
    out = peft_model({"ts": inp["ts"], "time_delta_input": inp["time_delta_input"]})
c_out = torch.tensor([float(x) for x in open("/tmp/our_out.txt")])
print("PEFT loaded", len(ours), "adapter tensors; equal to the file:", same, "; missing base keys:", len(missing))
print("PEFT output", out.tolist(), "lora.h output", c_out.tolist(), "max rel diff", (out - c_out).abs().max().item() / out.abs().max().item())
