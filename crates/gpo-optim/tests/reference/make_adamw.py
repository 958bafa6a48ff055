"""Reference trajectories for gpo-optim's AdamW and global-norm clipping (tests/optim.rs).

For each case, torch.optim.AdamW (CPU, float32, the default single-tensor path) runs a few
steps over three parameters with explicit gradients drawn from a seeded generator; before
each step the gradients may be clipped with torch.nn.utils.clip_grad_norm_. A gradient of
None means the parameter has no gradient at that step (PyTorch skips it, and its own step
count does not advance). Recorded per step: the learning rate, the gradients given, the
pre-clip norm and clipped gradients (when clipping), and the parameters after the step.
All tensors are flat lists in row-major order; floats are float32 values written exactly.

Run from this directory:
    /work/venv/bin/python make_adamw.py > ../fixtures/adamw.json
"""
import json

import torch

SHAPES = {"p1": [3, 4], "p2": [5], "p3": [2, 2, 2]}

CASES = [
    # The paper's betas/eps with weight decay, a changing learning rate, clipping at 1.0,
    # and p2 without a gradient at step 3.
    dict(name="paper-clipped", betas=(0.9, 0.95), eps=1e-6, weight_decay=0.1,
         max_norm=1.0, lrs=[1e-2, 2e-2, 3e-2, 2e-2, 1e-2, 5e-3], grad_scales=[3.0, 0.5, 2.0, 1.0, 0.05, 4.0],
         no_grad={3: ["p2"]}),
    # PyTorch's defaults, no weight decay, no clipping, some tiny gradients (eps matters).
    dict(name="defaults", betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
         max_norm=None, lrs=[1e-3] * 5, grad_scales=[1.0, 1e-4, 0.3, 1e-6, 2.0], no_grad={}),
    # beta1 < 0.5 takes torch.lerp's other formula; large weight decay; clipping sometimes.
    dict(name="low-beta1", betas=(0.3, 0.5), eps=1e-3, weight_decay=0.5,
         max_norm=4.0, lrs=[5e-2, 5e-2, 1e-1, 2e-2], grad_scales=[0.5, 3.0, 1.0, 2.5],
         no_grad={0: ["p3"], 1: ["p3"]}),
]


def flat(t):
    return t.detach().reshape(-1).tolist()


def run(case, seed):
    gen = torch.Generator().manual_seed(seed)
    params = {n: torch.nn.Parameter(torch.randn(s, generator=gen)) for n, s in SHAPES.items()}
    init = {n: flat(p) for n, p in params.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=case["lrs"][0], betas=case["betas"],
                            eps=case["eps"], weight_decay=case["weight_decay"])
    steps = []
    for k, (lr, scale) in enumerate(zip(case["lrs"], case["grad_scales"])):
        for g in opt.param_groups:
            g["lr"] = lr
        grads = {}
        for n, p in params.items():
            g = torch.randn(p.shape, generator=gen) * scale
            if n in case["no_grad"].get(k, []):
                p.grad = None
                grads[n] = None
            else:
                p.grad = g
                grads[n] = flat(g)
        rec = {"lr": lr, "grads": grads}
        if case["max_norm"] is not None:
            with_grad = [p for p in params.values() if p.grad is not None]
            rec["norm"] = torch.nn.utils.clip_grad_norm_(with_grad, max_norm=case["max_norm"]).item()
            rec["clipped"] = {n: (flat(p.grad) if p.grad is not None else None) for n, p in params.items()}
        opt.step()
        rec["params"] = {n: flat(p) for n, p in params.items()}
        steps.append(rec)
    return {
        "name": case["name"],
        "config": {"beta1": case["betas"][0], "beta2": case["betas"][1], "eps": case["eps"],
                   "weight_decay": case["weight_decay"]},
        "max_norm": case["max_norm"],
        "shapes": SHAPES,
        "init": init,
        "steps": steps,
    }


torch.set_default_dtype(torch.float32)
out = {"torch": torch.__version__, "cases": [run(c, seed) for seed, c in enumerate(CASES)]}
print(json.dumps(out))
