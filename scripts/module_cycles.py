#!/usr/bin/env python3
"""Import cycles between the top-level modules of each crate (issue: one concept per module,
no cycles). A module's imports are its `crate::NAME` paths (doc comments and `//` comments
aside); a name the crate root re-exports (`pub use module::Name`) counts as that module.

    scripts/module_cycles.py [CRATE_DIR ...]   # default: every crates/*

Prints each cycle (a strongly connected component of two or more modules) and exits 1 if
there is one.
"""
import pathlib
import re
import sys


def strip_comments(text):
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def top_module(src, path):
    rel = path.relative_to(src).parts
    name = rel[0][:-3] if rel[0].endswith(".rs") else rel[0]
    return None if name in ("lib", "main") else name


def root_reexports(src):
    """name -> module for `pub use module::{...}` / `pub use module::Name` in the root."""
    out = {}
    for root in ("lib.rs", "main.rs"):
        p = src / root
        if not p.exists():
            continue
        text = strip_comments(p.read_text())
        for m in re.finditer(r"pub use (?:crate::)?(\w+)::(\{[^}]*\}|\w+)", text, re.S):
            module, names = m.group(1), m.group(2)
            for n in re.findall(r"\w+", names):
                out[n] = module
    return out


def crate_paths(text):
    """The first segment of every `crate::...` path, groups expanded one level."""
    names = []
    for m in re.finditer(r"crate::(\{[^}]*\}|\w+)", text):
        g = m.group(1)
        if g.startswith("{"):
            depth, item, items = 0, "", []
            for c in g[1:-1]:
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                if c == "," and depth == 0:
                    items.append(item)
                    item = ""
                else:
                    item += c
            items.append(item)
            names += [re.match(r"\s*(\w*)", i).group(1) for i in items if i.strip()]
        else:
            names.append(g)
    return names


def graph(crate):
    src = crate / "src"
    modules = {top_module(src, p) for p in src.rglob("*.rs")} - {None}
    reexports = root_reexports(src)
    edges = {m: set() for m in modules}
    for p in src.rglob("*.rs"):
        me = top_module(src, p)
        if me is None:
            continue
        for name in crate_paths(strip_comments(p.read_text())):
            target = name if name in modules else reexports.get(name)
            if target in modules and target != me:
                edges[me].add(target)
    return edges


def cycles(edges):
    """Tarjan's strongly connected components of size > 1."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    crates = [pathlib.Path(a) for a in sys.argv[1:]] or sorted(pathlib.Path("crates").glob("*"))
    bad = False
    for crate in crates:
        edges = graph(crate)
        for comp in cycles(edges):
            bad = True
            inner = {m: sorted(edges[m] & set(comp)) for m in comp}
            print(f"{crate.name}: cycle {' '.join(comp)}")
            for m, to in inner.items():
                print(f"    {m} -> {', '.join(to)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
