"""Cross-check of gpo's LoRA adapters against Hugging Face PEFT, both ways: an adapter saved
by gpo loads in PEFT and gives the same log-probs as gpo's own forward with it, and an
adapter that PEFT writes (random, non-zero B, rank 8, every linear layer) loads in gpo and
gives PEFT's log-probs.

Loads SmolLM2-135M-Instruct from the same GGUF with PyTorch + transformers (dequantized to
f32), applies ADAPTER_DIR with `peft.PeftModel.from_pretrained`, and compares teacher-forced
log p(ids[i] | ids[..i]) with `gpo logprobs --model GGUF --adapter ADAPTER_DIR` on a few
texts (and the same for PEFT's adapter). Also reports how far each adapter moves the log-probs from the base model's, so a
match cannot come from an adapter that PEFT silently ignored.

Run: /work/venv/bin/python check_peft_adapter.py GPO_BINARY GGUF_PATH ADAPTER_DIR
(needs torch, transformers, gguf, peft; versions are printed).
"""
import json
import subprocess
import sys
import tempfile

import peft
import torch
import transformers

from smollm2_gguf import load_model, load_tokenizer

gpo, path, adapter = sys.argv[1:4]
tok = load_tokenizer(path)
base = load_model(path)
texts = [
    "<|im_start|>user\nWhat is frozen water called?<|im_end|>\n<|im_start|>assistant\nIce.",
    "<|im_start|>user\nName a musical instrument.<|im_end|>\n<|im_start|>assistant\nThe piano is a keyboard instrument.",
    "The capital of France is Paris, and the capital of Germany is Berlin.",
]


def logprobs(model, ids):
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    return [lp[i - 1, ids[i]].item() for i in range(1, len(ids))]




def compare(model, adapter_dir):
    """Largest |gpo - PEFT| log-prob, and largest change the adapter makes to the base's."""
    worst, moved = 0.0, 0.0
    for t in texts:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        want = logprobs(model, ids)
        out = subprocess.run([gpo, "logprobs", "--model", path, "--adapter", adapter_dir, "--text", t],
                             check=True, capture_output=True, text=True).stdout
        got = json.loads(out)
        assert got["ids"] == ids, (got["ids"], ids)
        got = got["logprobs"][1:]
        worst = max(worst, max(abs(a - b) for a, b in zip(got, want)))
        moved = max(moved, max(abs(a - b) for a, b in zip(want, base_lp[t])))
    return worst, moved


base_lp = {t: logprobs(base, tok(t, add_special_tokens=False)["input_ids"]) for t in texts}
gpo_to_peft = compare(peft.PeftModel.from_pretrained(base, adapter).eval(), adapter)

base = load_model(path)
torch.manual_seed(0)
cfg = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, init_lora_weights=False,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
written = peft.get_peft_model(base, cfg)
# init_lora_weights=False draws B at random too; scale it down so the model stays sane.
with torch.no_grad():
    for name, p in written.named_parameters():
        if "lora_B" in name:
            p.mul_(0.05)
written.eval()
with tempfile.TemporaryDirectory() as d:
    written.save_pretrained(d)
    peft_to_gpo = compare(written, d)

print(json.dumps({
    "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
    "texts": len(texts),
    "gpo_adapter_in_peft": {"max_abs_logprob_difference": gpo_to_peft[0], "max_abs_change_from_adapter": gpo_to_peft[1]},
    "peft_adapter_in_gpo": {"max_abs_logprob_difference": peft_to_gpo[0], "max_abs_change_from_adapter": peft_to_gpo[1]},
}))
