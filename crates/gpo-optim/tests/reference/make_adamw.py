"""Reference trajectory for gpo-optim's AdamW + global-norm clipping (tests/adamw.rs).

torch.optim.AdamW(lr=1e-2, betas=(0.9, 0.95), eps=1e-6, weight_decay=0.1) over two
parameters; at step k the gradient is g = cos(0.7 * k + 0.3 * i) * (k + 1) (i = flat index), clipped
with torch.nn.utils.clip_grad_norm_(max_norm=1.0). Records the pre-clip norm and the
parameters after each of 5 steps.

Run: /work/venv/bin/python make_adamw.py > ../fixtures/adamw.json
"""
import json
import math

import torch

torch.set_default_dtype(torch.float32)
p1 = torch.nn.Parameter(torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.5, -0.25, 0.75, -2.0], [0.1, 0.2, -0.3, 0.4]]))
p2 = torch.nn.Parameter(torch.tensor([3.0, -3.0, 0.5, 0.25, -0.125]))
params = [p1, p2]
init = [p.detach().clone().tolist() for p in params]
opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.95), eps=1e-6, weight_decay=0.1)


def grad_for(p, k):
    n = p.numel()
    return torch.tensor([math.cos(0.7 * k + 0.3 * i) * (k + 1) for i in range(n)], dtype=torch.float32).reshape(p.shape)


steps = []
for k in range(5):
    for p in params:
        p.grad = grad_for(p, k)
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0).item()
    opt.step()
    steps.append({"norm": norm, "p1": p1.detach().tolist(), "p2": p2.detach().tolist()})
print(json.dumps({"torch": torch.__version__, "init": init, "steps": steps}))
