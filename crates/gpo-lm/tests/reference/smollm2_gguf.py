"""SmolLM2-135M-Instruct for the reference scripts: loaded with PyTorch + transformers from
the same GGUF file that gpo reads (dequantized to f32 by transformers' GGUF loader)."""
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def load_tokenizer(path):
    """The GGUF's tokenizer."""
    return AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))


def load_model(path):
    """The GGUF's model in f32, in eval mode."""
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32)
    return model.eval()
