#!/usr/bin/env python3
"""The modules of a crate must not import each other in a circle (docs/architecture.md,
"Layers of tenure-core"). Reads every `crate::…`, `super::…` and `self::…` path and every
relative `use`/`pub use` of a child module (`pub use book::X` in segments/mod.rs is an
edge segments → segments::book), outside `#[cfg(test)]` sections; prints the modules by
layer (a module's layer is one above the highest it uses) and exits 1 on a circle.

usage: scripts/module_layers.py [CRATE_SRC_DIR]   (default crates/tenure-core/src)
"""
import os
import re
import sys
from collections import defaultdict

src = sys.argv[1] if len(sys.argv) > 1 else "crates/tenure-core/src"
mods = {}
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        parts = os.path.relpath(path, src)[:-3].split(os.sep)
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        mods["::".join(parts) or "crate"] = path


def resolve(segments):
    """The most specific module named by a path's leading segments."""
    for k in range(len(segments), 0, -1):
        name = "::".join(segments[:k])
        if name in mods:
            return name
    return None


def expand(use):
    """`a::{b, c::{d, e}}` → [a::b, a::c::d, a::c::e] (whitespace removed)."""
    m = re.match(r"^(.*?)\{(.*)\}$", use)
    if not m:
        return [use]
    prefix, body = m.groups()
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    return [x for it in items if it for x in expand(prefix + it)]


edges = defaultdict(set)
for module, path in mods.items():
    text = open(path, encoding="utf-8").read()
    text = re.split(r"#\[cfg\(test\)\]", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    here = [] if module == "crate" else module.split("::")
    children = set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M))
    paths = []
    for use in re.findall(r"\buse\s+([^;]+);", text):
        paths += expand(re.sub(r"\s+", "", use))
    paths += re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)
    for p in paths:
        segs = [s.split(" as ")[0] for s in p.split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            target = segs[1:]
        elif segs[0] in ("super", "self"):
            base = list(here)
            while segs and segs[0] in ("super", "self"):
                if segs.pop(0) == "super":
                    # a file module's `super` is its parent
                    base = base[:-1]
            target = base + segs
        elif segs[0] in children:
            target = here + segs
        else:
            continue
        t = resolve(target)
        if t and t != module and t != "crate" and not module.startswith(t + "::"):
            edges[module].add(t)

# Strongly connected components (Tarjan).
index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(edges[v]):
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
        comps.append(comp)


sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in index:
        visit(v)
circles = [sorted(c) for c in comps if len(c) > 1]
if circles:
    for c in circles:
        print("circle: " + ", ".join(c))
        for a in c:
            print(f"  {a} uses " + ", ".join(sorted(b for b in edges[a] if b in c)))
    sys.exit(1)

layer = {}


def depth(v):
    if v not in layer:
        layer[v] = 1 + max((depth(w) for w in edges[v]), default=-1)
    return layer[v]


for v in mods:
    depth(v)
by_layer = defaultdict(list)
for v, d in layer.items():
    if v != "crate":
        by_layer[d].append(v)
for d in sorted(by_layer):
    print(f"{d:2}: " + ", ".join(sorted(by_layer[d])))
print(f"no circles among {len(mods) - 1} modules")
