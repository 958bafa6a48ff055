"""Reference log-probs for gpo-lm's logits test (crates/gpo-lm/tests/model_smollm2.rs).

Loads SmolLM2-135M-Instruct from the same GGUF that gpo uses with PyTorch + transformers
(dequantized to f32 by transformers' GGUF loader), runs a teacher-forced forward pass over a
few texts and writes, per text, the token ids, log p(ids[i] | ids[..i]) and the arg-max next
token at every position.

Run: /work/venv/bin/python make_smollm2_reference.py GGUF_PATH > ../fixtures/smollm2_reference.json
(versions used: printed into the JSON).
"""
import json
import os
import sys

import torch
import transformers

from smollm2_gguf import load_model, load_tokenizer

path = sys.argv[1]
torch.manual_seed(0)
tok = load_tokenizer(path)
model = load_model(path)
texts = [
    "The capital of France is Paris, and the capital of Germany is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "<|im_start|>user\nHow do I bake bread?<|im_end|>\n<|im_start|>assistant\n",
    "Les élèves ont étudié 12 chapitres en 3 jours. 东京 is a city. 🙂",
]
out = {"torch": torch.__version__, "transformers": transformers.__version__, "gguf": os.path.basename(path), "cases": []}
with torch.no_grad():
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        logits = model(torch.tensor([ids])).logits[0].float()
        lp = torch.log_softmax(logits, dim=-1)
        logprobs = [None] + [lp[i - 1, ids[i]].item() for i in range(1, len(ids))]
        top1 = logits.argmax(-1).tolist()
        # margin between the best and second-best logit, so the test can tell a real
        # disagreement from a near-tie
        top2 = torch.topk(logits, 2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]).tolist()
        out["cases"].append({"text": text, "ids": ids, "logprobs": logprobs, "top1": top1, "top1_margin": margin})
print(json.dumps(out))
