#!/usr/bin/env bash
# Lists the `use crate::<module>` edges between knit's top-level modules (and
# between the modules inside knit/src/lanes/), and fails if they form a cycle.
#
#   scripts/import-graph.sh          the edges and the result (exit 1 on a cycle)
#   scripts/import-graph.sh --all    also report the cycles inside every other folder
#
# Paths are read from the source text (comments and strings stripped):
# `crate::`, `super::`, `self::` and `use child::…` paths, `use` groups
# included, with re-exports (`pub(crate) use a::B;`) followed to the module
# that defines the item. Edges only test code makes (`#[cfg(test)]` items,
# test-only modules) are shown but not held against the graph. lib.rs (the
# crate root, the public facade) is not a node.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys
from collections import defaultdict

SRC = os.environ.get("KNIT_SRC", "knit/src")
def strict_folder(parent):
    """Folders whose cycles fail the check: the top level, and lanes/ all the way down."""
    return parent == () or parent[:1] == ("lanes",)
# Cycles that predate this check, outside the lanes (an error type naming the
# JS and task errors that use it; a Call holding its Caller): reported, not
# failed on, as long as they do not grow. Remove an entry once it is broken.
KNOWN = {(): [{"codec", "error", "js", "task_error"}, {"call", "caller"}]}
show_all = "--all" in sys.argv[1:]

def module_of(rel):
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)

files = {}
for dirpath, _, names in os.walk(SRC):
    for n in names:
        if n.endswith(".rs"):
            rel = os.path.relpath(os.path.join(dirpath, n), SRC)
            files[module_of(rel)] = os.path.join(dirpath, n)
modules = set(files)

def strip(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i); i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i): depth += 1; i += 2
                elif text.startswith("*/", i): depth -= 1; i += 2
                else: i += 1
        elif c == '"' or (c == "r" and re.match(r'r#*"', text[i:i+10]) and not re.match(r"\w", text[i-1:i] or " ")):
            m = re.match(r'r(#*)"', text[i:])
            if c == "r" and m:
                end = '"' + m.group(1); j = text.find(end, i + len(m.group(0)))
                i = n if j < 0 else j + len(end)
            else:
                i += 1
                while i < n and text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
                i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i+4]) or text.startswith("'\\u{", i):
            j = text.find("'", i + 1); i = j + 1; out.append("' '")
        else:
            out.append(c); i += 1
    return "".join(out)

PATH = re.compile(r"\b(?:(?P<use>use)\s+)?(?P<path>(?:crate|super|self)(?:\s*::\s*(?:\w+|\{))+|(?<=use )\w+(?:\s*::\s*(?:\w+|\{))+)")

def parse_tree(s, i):
    """Parses a use tree at s[i]; returns (list of segment lists, end)."""
    paths, seg = [], []
    while True:
        m = re.match(r"\s*(\w+|\*)", s[i:])
        if m and s[i:i+m.end()].strip() != "":
            seg.append(m.group(1)); i += m.end()
        m2 = re.match(r"\s*::\s*", s[i:])
        if m2:
            i += m2.end()
            if s[i] == "{":
                i += 1
                while True:
                    sub, i = parse_tree(s, i)
                    paths += [seg + p for p in sub]
                    m3 = re.match(r"\s*,\s*", s[i:])
                    if m3: i += m3.end()
                    m4 = re.match(r"\s*\}", s[i:])
                    if m4: i += m4.end(); return paths, i
            continue
        m5 = re.match(r"\s+as\s+(\w+)", s[i:])
        alias = None
        if m5: alias = m5.group(1); i += m5.end()
        if seg: paths.append(seg + ([("as", alias)] if alias else []))
        return paths, i

def absolute(cur, seg):
    """cur: the module the path is written in; seg: its segments."""
    seg = [x for x in seg if not isinstance(x, tuple)]
    if not seg: return None
    if seg[0] == "crate": base, rest = [], seg[1:]
    elif seg[0] in ("super", "self"):
        base = list(cur)
        while seg and seg[0] in ("super", "self"):
            if seg[0] == "super": base = base[:-1]
            seg = seg[1:]
        rest = seg
    elif tuple(cur) + (seg[0],) in modules: base, rest = list(cur), seg
    else: return None
    return tuple(base + [x for x in rest if x != "self"])

refs = []          # (file module, scope module, absolute path, test?)
reexports = {}     # (module, name) -> absolute path
test_modules = set()
for mod, path in files.items():
    text = strip(open(path, encoding="utf-8").read())
    # inline modules and #[cfg(test)] spans, by brace depth
    spans, stack, depth, test_until = [], [], 0, []
    tokens = re.finditer(r"#\[cfg\(test\)\]|\bmod\s+(\w+)\s*(\{|;)|\{|\}|;|,", text)
    pending_test = None
    inline_at = {}
    events = []
    for t in tokens:
        g = t.group(0)
        if g.startswith("#[cfg(test)]"):
            pending_test = depth
            events.append((t.end(), tuple(s for s, _ in stack), True)); continue
        if t.group(1):
            name = t.group(1)
            if t.group(2) == "{":
                depth += 1; stack.append((name, depth))
                if pending_test is not None: test_until.append(depth); pending_test = None
            elif pending_test is not None:
                test_modules.add(mod + (name,)); pending_test = None
            events.append((t.end(), tuple(s for s, _ in stack), bool(test_until)))
            continue
        if g == "{":
            depth += 1
            if pending_test is not None: test_until.append(depth); pending_test = None
        elif g == "}":
            if test_until and test_until[-1] == depth: test_until.pop()
            if stack and stack[-1][1] == depth: stack.pop()
            depth -= 1
        elif g in ";," and pending_test is not None and depth == pending_test:
            pending_test = None
        events.append((t.end(), tuple(s for s, _ in stack), bool(test_until) or pending_test is not None))
    def scope_at(pos):
        lo, hi, best = 0, len(events) - 1, ((), False)
        while lo <= hi:
            mid = (lo + hi) // 2
            if events[mid][0] <= pos: best = events[mid][1:]; lo = mid + 1
            else: hi = mid - 1
        return best
    for m in PATH.finditer(text):
        start = m.start("path")
        inline, is_test = scope_at(start)
        cur = mod + inline
        trees, _ = parse_tree(text, start)
        is_use = bool(m.group("use")) or text[max(0, start-4):start] == "use "
        if not is_use and not m.group("path").startswith(("crate", "super", "self")):
            continue
        pub = re.search(r"pub(\([^)]*\))?\s+use\s*$", text[max(0, start-30):start])
        for seg in trees:
            a = absolute(cur, seg)
            if a is None or "*" in a: continue
            refs.append((mod, a, is_test))
            if pub and not inline:
                alias = [x[1] for x in seg if isinstance(x, tuple)]
                reexports[(mod, alias[0] if alias else a[-1])] = a

# test-only modules: declared under #[cfg(test)], and everything below them
def is_test_module(m):
    return any(m[:len(t)] == t for t in test_modules)

def resolve(a, seen=()):
    """The module that defines what path `a` names."""
    for k in range(len(a), -1, -1):
        if a[:k] in modules:
            base = a[:k]; break
    if k < len(a) and (base, a[k]) in reexports and a not in seen:
        return resolve(reexports[(base, a[k])] + a[k+1:], seen + (a,))
    return base

def node(m, parent):
    if m[:len(parent)] != parent: return None
    return m[:len(parent) + 1] if len(m) > len(parent) else parent

def cycles(edges, nodes):
    index, low, on, st, out, counter = {}, {}, set(), [], [], [0]
    def sc(v):
        index[v] = low[v] = counter[0]; counter[0] += 1; st.append(v); on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index: sc(v)
    return out

def name(m): return "/".join(m) if m else "crate"

folders = sorted({m[:k] for m in modules for k in range(len(m))})
failed = False
for parent in folders:
    strict = strict_folder(parent)
    if not strict and not show_all: continue
    edges, test_edges, nodes = defaultdict(set), defaultdict(set), set()
    for mod, a, is_test in refs:
        src, dst = node(mod, parent), node(resolve(a), parent)
        if src is None or dst is None or src == dst: continue
        if parent == () and () in (src, dst): continue
        if is_test or is_test_module(mod): test_edges[src].add(dst)
        else: edges[src].add(dst)
        nodes |= {src, dst}
    found = cycles(edges, nodes)
    if strict:
        print(f"== {name(parent)}/: edges (module -> modules it uses)" if parent else "== knit/src top level: edges (module -> modules it uses)")
        for src in sorted(nodes):
            deps = sorted(edges.get(src, ()))
            tdeps = sorted(test_edges.get(src, set()) - edges.get(src, set()))
            line = ", ".join(name(d) for d in deps) or "-"
            if tdeps: line += "   [tests only: " + ", ".join(name(d) for d in tdeps) + "]"
            print(f"  {name(src):24} -> {line}")
    new = []
    for comp in found:
        known = any({name(c) for c in comp} <= k for k in KNOWN.get(parent, []))
        print(("known cycle (predates the check)" if known else "CYCLE") + f" in {name(parent)}: "
              + " <-> ".join(name(c) for c in comp))
        if not known: new.append(comp)
    if strict:
        failed |= bool(new)
        print(f"  {'FAIL' if new else 'ok'}: {len(new)} new cycle(s) in {name(parent)}")
sys.exit(1 if failed else 0)
PY
