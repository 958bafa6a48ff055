"""PyTorch's bf16 autocast on the CPU, the baseline of `gpo bench --dtype bf16` (BENCHMARKS.md).

Same model, shapes and threads as `gpo bench`: SmolLM2-135M-Instruct from the project's GGUF
(dequantized to f32), sampling 8 chat prompts x 64 new tokens (temperature 0.8, top-p 0.9,
KV cache), and a LoRA step (r 16, alpha 32, every linear layer, no dropout; AdamW) on 8 x 128
random tokens. Each is timed in f32 and under `torch.autocast("cpu", dtype=torch.bfloat16)`,
which runs the linear layers in bf16 (oneDNN) and keeps f32 master weights. Median of 3 after
a warm-up. Prints one JSON object.

Set-up: python3 -m venv VENV && VENV/bin/pip install torch==2.11.0 transformers gguf numpy peft
Usage: OMP_NUM_THREADS=N VENV/bin/python torch_bf16_baseline.py GGUF_DIR GGUF_FILE
"""
import contextlib
import json
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

QUESTIONS = ["How do I bake bread?", "Write a poem about the sea.", "What is the capital of France?",
             "Explain photosynthesis.", "Give me three tips for sleeping well.", "What is a prime number?",
             "How do vaccines work?", "Tell me a joke about cats."]


def median(xs):
    return sorted(xs)[len(xs) // 2]


def autocast(bf16):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def sampling(model, tok, bf16):
    texts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                     add_generation_prompt=True) for q in QUESTIONS]
    enc = tok(texts, return_tensors="pt", padding=True)
    kw = dict(do_sample=True, temperature=0.8, top_p=0.9)
    with torch.no_grad(), autocast(bf16):
        model.generate(**enc, max_new_tokens=8, **kw)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            model.generate(**enc, max_new_tokens=64, min_new_tokens=64, **kw)
            times.append(time.perf_counter() - t)
    return 8 * 64 / median(times)


def lora_step(model, vocab, bf16):
    cfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft = get_peft_model(model, cfg)
    peft.train()
    opt = torch.optim.AdamW([p for p in peft.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, vocab, (8, 128))
    times = []
    for i in range(4):
        t = time.perf_counter()
        with autocast(bf16):
            loss = peft(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - t)
    peft.unload()
    return median(times)


def main():
    gdir, gfile = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gfile)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__,
           "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    for name, bf16 in [("f32", False), ("bf16_autocast", True)]:
        model = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gfile, dtype=torch.float32)
        model.eval()
        out[f"{name}_gen_tokens_per_s"] = sampling(model, tok, bf16)
        out[f"{name}_lora_step_s"] = lora_step(model, tok.vocab_size, bf16)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
