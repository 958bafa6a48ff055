#!/usr/bin/env python3
"""Throughput of an OpenAI-compatible chat server under concurrent clients.

    scripts/serve_bench.py URL MODEL [--concurrency 1 8 32] [--requests 4] [--max-tokens 64]

Each of C clients sends --requests chat completions one after another (a closed loop), all
clients at once; prompts are 16 short requests in turn, sampled at temperature 0.8 and top-p
0.9 with a seed per request. Prints one JSON line per C: wall seconds, requests/s,
completion tokens/s (from each reply's `usage`), and the median and 90th-percentile request
latency. Standard library only, so it runs against gpo serve and llama.cpp's server alike.
"""
import argparse
import json
import statistics
import threading
import time
import urllib.request

PROMPTS = [
    "Name three fruits.", "What is the capital of France?", "Write a haiku about rain.",
    "How do I boil an egg?", "Give me a fun fact about cats.", "What is 12 times 7?",
    "Suggest a name for a goldfish.", "Why is the sky blue?", "Translate 'hello' into Spanish.",
    "List two uses of a paperclip.", "What does a bee make?", "Describe a sunset in one sentence.",
    "Recommend a board game for four people.", "What is a prime number?",
    "How many legs does a spider have?", "Say something kind to a friend.",
]


def post(url, body):
    req = urllib.request.Request(
        url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer unused"},
    )
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def run(url, model, clients, requests, max_tokens):
    latencies, tokens, errors = [], [0], []
    lock = threading.Lock()

    def client(c):
        for r in range(requests):
            k = c * requests + r
            body = {
                "model": model,
                "messages": [{"role": "user", "content": PROMPTS[k % len(PROMPTS)]}],
                "max_tokens": max_tokens, "temperature": 0.8, "top_p": 0.9, "seed": k,
            }
            t0 = time.perf_counter()
            try:
                reply = post(url, body)
            except Exception as e:  # noqa: BLE001 - reported, the bench goes on
                with lock:
                    errors.append(str(e))
                continue
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                tokens[0] += reply["usage"]["completion_tokens"]

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "concurrency": clients, "requests": len(latencies), "errors": len(errors),
        "wall_s": round(wall, 2), "requests_per_s": round(len(latencies) / wall, 3),
        "tokens_per_s": round(tokens[0] / wall, 1),
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p90_s": round(latencies[int(0.9 * (len(latencies) - 1))], 2) if latencies else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", help="the API root, e.g. http://127.0.0.1:8000/v1")
    ap.add_argument("model")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=4, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--label", default="", help="a `server` field for each line")
    args = ap.parse_args()
    post(args.url, {"model": args.model, "max_tokens": 1,
                    "messages": [{"role": "user", "content": "hi"}]})  # warm up
    for c in args.concurrency:
        line = {"server": args.label} if args.label else {}
        line.update(run(args.url.rstrip("/"), args.model, c, args.requests, args.max_tokens))
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
