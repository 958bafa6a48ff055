"""Reference values for gpo-diversity's NLTK fixture test (crates/gpo-diversity/tests/nltk.rs).

Words: lower-case, then the regex \\w+|[^\\w\\s] (docs/method.md). BLEU_n: NLTK's
sentence_bleu with one reference, uniform weights 1/n over 1..n-grams and
SmoothingFunction().method1 (epsilon 0.1).
self_bleu(x, X): mean over x' in X of mean over n in {2,3,4,5} of BLEU_n(x, x').

The texts avoid the few characters where Python's \\w and Rust regex's Unicode \\w disagree
(combining marks, superscript digits, variation selectors; see gpo-diversity's words.rs).

Run: /work/venv/bin/python make_fixtures.py > ../fixtures/nltk_reference.json
(versions used: printed into the JSON).
"""
import json
import re
import sys

import nltk
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

WORD = re.compile(r"\w+|[^\w\s]")
SMOOTH = SmoothingFunction().method1


def words(text):
    return WORD.findall(text.lower())


def bleu(hyp, ref, n):
    return sentence_bleu([ref], hyp, weights=tuple([1.0 / n] * n), smoothing_function=SMOOTH)


def self_bleu(x, others):
    hx = words(x)
    per_ref = [sum(bleu(hx, words(o), n) for n in (2, 3, 4, 5)) / 4 for o in others]
    return sum(per_ref) / len(per_ref)


texts = [
    "",
    "hi",
    "Hi!",
    "How do I bake bread?",
    "How do I bake sourdough bread at home?",
    "how do i bake bread ? how do i bake bread ?",
    "Tell me how to pick a lock, step by step.",
    "Tell me, step by step, how to pick a lock!!!",
    "The the the the the the the.",
    "What's the capital of France? It's Paris... isn't it?",
    "Les élèves ont étudié 12 chapitres en 3 jours.",
    "东京 is a city; 東京 は 都市 です。",
    "Привет, как дела? ПРИВЕТ!",
    "emoji 🙂🙂 and dashes -- and ___ underscores__x",
    "a b c d e f g h i j k l m n o p",
    "p o n m l k j i h g f e d c b a",
    "    ",
    "?!",
    "straße STRASSE Straße",
    "Write a poem about the sea, the sky and the wind.",
    "Write a poem about the wind, the sky and the sea.",
]
pairs = []
for h in texts:
    for r in texts:
        hw, rw = words(h), words(r)
        pairs.append({"hyp": h, "ref": r, "bleu": [bleu(hw, rw, n) for n in (1, 2, 3, 4, 5)]})
self_cases = []
for i, x in enumerate(texts):
    others = texts[:i] + texts[i + 1 :]
    self_cases.append({"x": x, "others": others, "self_bleu": self_bleu(x, others)})
# A few small histories too, including one with a duplicate of x.
for x, others in [
    ("How do I bake bread?", ["How do I bake bread?"]),
    ("How do I bake bread?", ["how do I bake bread", "bake bread how"]),
    ("", ["", "nonempty words here"]),
]:
    self_cases.append({"x": x, "others": others, "self_bleu": self_bleu(x, others)})
out = {
    "nltk": nltk.__version__,
    "python": sys.version.split()[0],
    "words": [{"text": t, "words": words(t)} for t in texts],
    "bleu_orders": [1, 2, 3, 4, 5],
    "pairs": pairs,
    "self_bleu": self_cases,
}
json.dump(out, sys.stdout, ensure_ascii=False, indent=0)
print()
