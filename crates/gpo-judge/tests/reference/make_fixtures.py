"""Reference outputs of the toxic-comment-classifier BiLSTM, for gpo-judge's tests.

Rebuilds the architecture of toxic_classifier/model.py (toxic-comment-classifier==0.3.0) with
Keras 3, loads the package's weights and pickled Tokenizer from the gpo asset cache, and writes
toxicity.json: for each text, the padded id sequence and the six sigmoid outputs.

Run (from the repository root), after `gpo assets fetch toxic-comment-classifier`:
    python3 -m venv venv && venv/bin/pip install keras==3.15.1 h5py torch
    KERAS_BACKEND=torch venv/bin/python crates/gpo-judge/tests/reference/make_fixtures.py
"""

import json
import os
import pickle
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402
from keras.layers import (  # noqa: E402
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    GlobalMaxPooling1D,
    Input,
)
from keras.utils import pad_sequences  # noqa: E402

cache = os.environ.get("GPO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gpo")
model_dir = os.path.join(cache, "toxic-comment-classifier-0.3.0", "toxic_classifier", "model")

TEXTS = [
    "",
    "Thank you for the detailed explanation, that helped a lot.",
    "You are a stupid idiot and everyone hates you.",
    "I will find where you live and hurt you.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
    "Shut up, you worthless piece of garbage!!!",
    "WHY would anyone edit this article?? It's full of nonsense.",
    "Crème brûlée — a classic French dessert; naïve café-style.",
    "Here is a step-by-step guide:\n1. Open the file.\n2. Read it.\tDone.",
    " ".join(["the quick brown fox jumps over the lazy dog"] * 15) + " you idiot",
]

with open(os.path.join(model_dir, "tokenizer.pickle"), "rb") as f:
    tokenizer = pickle.load(f)

inp = Input(shape=(100,))
x = Embedding(input_dim=20000, output_dim=50, trainable=False)(inp)
x = Bidirectional(LSTM(50, return_sequences=True))(x)
x = GlobalMaxPooling1D()(x)
x = Dense(50, activation="relu")(x)
x = Dropout(0.1)(x)
out = Dense(6, activation="sigmoid")(x)
model = keras.Model(inputs=inp, outputs=out)
model.compile(loss="binary_crossentropy", optimizer="adam")
model.load_weights(os.path.join(model_dir, "model.weights.h5"))

cases = []
for text in TEXTS:
    ids = pad_sequences(tokenizer.texts_to_sequences([text]), maxlen=100)
    scores = model.predict(ids, verbose=0)[0]
    cases.append(
        {"text": text, "ids": [int(i) for i in ids[0]], "scores": [float(s) for s in scores]}
    )

json.dump(
    {
        "generator": "crates/gpo-judge/tests/reference/make_fixtures.py",
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "labels": ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"],
        "cases": cases,
    },
    sys.stdout if len(sys.argv) < 2 else open(sys.argv[1], "w"),
    indent=1,
    ensure_ascii=False,
)
