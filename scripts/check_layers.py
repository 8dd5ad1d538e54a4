#!/usr/bin/env python3
"""The include rules of optower's libraries (docs/ARCHITECTURE.md), checked on every build.

  check_layers.py ROOT [--stamp FILE]

Reads every #include of the project's own sources (core/, server/, cli/, client/, bench/, fuzz/,
tests/) and fails (exit 1, one line per violation: file:line: what is wrong) when
  * a core/ library includes a core/ library it may not depend on (LAYERS below: a library sees only
    the ones listed, so the arrows in the diagram point one way and cannot form a cycle),
  * core/ includes gRPC, protobuf, generated protos, or anything from server/, cli/, client/,
    bench/, fuzz/ or tests/ (core is the library layer the server, the CLI and the tests link),
  * LibTorch is included outside the libraries that are allowed to use it (TORCH below),
  * a core/ file sits outside a library folder, or a library folder is not listed here,
  * the include graph of the project's own headers has a cycle (within a library too).
Only quoted includes of project paths and angle includes of the forbidden systems are looked at;
an include inside a comment or a disabled #if block is still counted (stricter, never looser).
With --stamp, touches FILE on success (the build's custom command).
"""
import argparse
import os
import re
import sys

# library -> the core libraries it may include (besides itself).
LAYERS = {
    "base": [],
    "model": ["base"],
    "learning": ["base", "model"],
    "storage": ["base", "model"],
    "serving": ["base", "model", "storage"],
    "training": ["base", "model", "learning", "storage"],
    "synthetic": ["base"],
}
TORCH = {"model", "learning", "synthetic"}  # core libraries that may include LibTorch
FORBIDDEN_IN_CORE = ("server/", "cli/", "client/", "bench/", "fuzz/", "tests/", "optower/v1/",
                     "grpc", "grpcpp/", "google/protobuf/")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
SOURCE_DIRS = ("core", "server", "cli", "client", "bench", "fuzz", "tests")


def sources(root):
    for top in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = [d for d in dirnames if d not in ("build", "corpus", "python", "__pycache__")]
            for name in sorted(filenames):
                if name.endswith((".h", ".cc")):
                    path = os.path.join(dirpath, name)
                    yield os.path.relpath(path, root)


def includes(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield number, m.group(1), m.group(2)


def core_library(rel):
    parts = rel.split("/")
    return parts[1] if parts[0] == "core" and len(parts) >= 3 else None


def check(root):
    errors = []
    graph = {}
    for rel in sources(root):
        parts = rel.split("/")
        lib = core_library(rel)
        if parts[0] == "core":
            if lib is None:
                if rel != "core/CMakeLists.txt":
                    errors.append(f"{rel}:1: core/ sources belong in a library folder (core/<library>/)")
                continue
            if lib not in LAYERS:
                errors.append(f"{rel}:1: core/{lib}/ is not a library listed in scripts/check_layers.py")
                continue
        edges = graph.setdefault(rel, [])
        for number, kind, target in includes(root, rel):
            where = f"{rel}:{number}: includes {kind}{target}{'>' if kind == '<' else kind}"
            if target.startswith("torch/") and parts[0] == "core" and lib not in TORCH:
                errors.append(f"{where}: core/{lib} may not use LibTorch (only {', '.join(sorted(TORCH))})")
            if kind == '"' and os.path.exists(os.path.join(root, target)):
                edges.append(target)
            if parts[0] != "core":
                continue
            if target.startswith(FORBIDDEN_IN_CORE):
                errors.append(f"{where}: core/ may not include gRPC, protobuf or {target.split('/')[0]}/")
                continue
            target_lib = core_library(target)
            if target.startswith("core/") and target_lib != lib and target_lib not in LAYERS[lib]:
                allowed = ", ".join(LAYERS[lib]) or "no other library"
                errors.append(f"{where}: core/{lib} may not depend on core/{target_lib} "
                              f"(it may use {allowed})")
    errors.extend(cycles(graph))
    return errors


def cycles(graph):
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                found.append(f"{node}:1: include cycle: {' -> '.join(stack[stack.index(nxt):] + [nxt])}")
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--stamp")
    args = parser.parse_args()
    errors = check(os.path.abspath(args.root))
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"check_layers: {len(errors)} violation(s); the rules: docs/ARCHITECTURE.md", file=sys.stderr)
        return 1
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
