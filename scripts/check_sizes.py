#!/usr/bin/python3
"""Size audit of the hand-written C++ in core/, server/ and cli/ (issue 10).

Lists every source file over MAX_FILE_LINES lines and every function over MAX_FUNCTION_LINES lines
(from the line of its signature to its closing brace). Exit status 1 when a file that is not on
the allow list breaks a limit; violations in allowed files are printed as "(allowed)" only.

  scripts/check_sizes.py [--root DIR] [--allow FILE] [--dirs core server cli]

The allow list (scripts/check_sizes_allow.txt by default) holds one repository-relative path per
line ('#' comments); it is meant to shrink to nothing once the files it names are split.

Limits of the function finder (a heuristic, not a C++ parser):
- Comments, string and character literals (raw strings included) and preprocessor lines are
  blanked first, then braces are matched. A '{' at namespace or class level opens a function when
  the text before it (since the last ';', '{' or '}') has a ')' followed only by qualifiers
  (const, noexcept, override, final, a trailing return type) or by a constructor's initializer
  list, and has no top-level '='. namespace/class/struct/union/enum/extern blocks are scopes;
  anything else (an initializer, a lambda assigned at namespace scope) is skipped whole.
- Macros that expand to functions (TEST(...) { ... }) count as functions, which is what we want.
- Functions defined inside a macro's arguments, or code hidden behind #if branches that both open
  a brace, can confuse it; generated code (build/, *.pb.*) is not scanned.
"""
import argparse
import os
import re
import sys

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
SOURCE_EXTENSIONS = (".cc", ".h", ".cpp", ".hpp")
SCOPE_RE = re.compile(r"^(?:template\s*<.*>\s*)?(?:inline\s+)?(namespace|class|struct|union|enum|extern)\b")
QUALIFIERS_RE = re.compile(
    r"\)\s*(?:const\s*)?(?:&{1,2}\s*)?(?:noexcept(?:\s*\([^)]*\))?\s*)?(?:override\s*)?"
    r"(?:final\s*)?(?:->\s*[\w:<>,\s*&]+)?$")
CTOR_INIT_RE = re.compile(r"\)\s*(?:noexcept\s*)?:(?!:)")


def blank_comments_and_strings(text):
    """Replaces comments, literals and preprocessor lines by spaces, keeping the newlines."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == "#" :
            # A preprocessor line, with its backslash continuations.
            while i < n and not (text[i] == "\n" and text[i - 1] != "\\"):
                out.append("\n" if text[i] == "\n" else " ")
                i += 1
            continue
        if c == "\n":
            out.append(c)
            line_start = True
            i += 1
            continue
        if not c.isspace():
            line_start = False
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                out.append(" ")
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        raw = re.match(r'R"([^(\s]*)\(', text[i:i + 20])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = ")" + raw.group(1) + '"'
            end = text.find(close, i + len(raw.group(0)))
            end = n if end < 0 else end + len(close)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        if c in "\"'":
            # A digit separator (1'000'000) is not a character literal.
            if c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum():
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + (c if j < n else ""))
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def has_top_level_equals(header):
    depth = 0
    for k, ch in enumerate(header):
        if ch in "([<":
            depth += 1
        elif ch in ")]>":
            depth = max(0, depth - 1)
        elif ch == "=" and depth == 0:
            prev = header[k - 1] if k else ""
            nxt = header[k + 1] if k + 1 < len(header) else ""
            if prev not in "=!<>" and nxt != "=" and "operator" not in header[max(0, k - 9):k]:
                return True
    return False


def is_function_header(header):
    h = " ".join(header.split())
    if not h or ")" not in h or SCOPE_RE.match(h) or has_top_level_equals(h):
        return False
    return bool(QUALIFIERS_RE.search(h) or CTOR_INIT_RE.search(h))


def function_name(header):
    h = " ".join(header.split())
    m = re.search(r"([~\w:<>]+(?:operator\s*\S+?)?)\s*\(", h)
    return m.group(1) if m else h[:40]


def find_functions(text):
    """Yields (name, first_line, last_line) of every function defined at namespace/class level."""
    code = blank_comments_and_strings(text)
    stack = []  # entries: ("scope"|"function"|"other"|"init", start_line, name)
    header, header_line = "", None
    line = 1
    for ch in code:
        if ch == "\n":
            line += 1
        in_function = any(kind in ("function", "other") for kind, _, _ in stack)
        if ch == "{":
            if in_function:
                stack.append(("inner", line, ""))
                continue
            h = " ".join(header.split())
            if CTOR_INIT_RE.search(h) and re.search(r"[\w>]$", h):
                stack.append(("init", line, ""))  # a brace initializer in a ctor's init list
                header += "{"
                continue
            if SCOPE_RE.match(h) or h.startswith("extern"):
                stack.append(("scope", line, ""))
            elif is_function_header(h):
                stack.append(("function", header_line or line, function_name(h)))
            else:
                stack.append(("other", line, ""))
            header, header_line = "", None
        elif ch == "}":
            if not stack:
                continue
            kind, start, name = stack.pop()
            if kind == "init":
                header += "}"
                continue
            if kind == "function":
                yield name, start, line
            if kind != "inner":
                header, header_line = "", None
        elif ch == ";" and not in_function:
            header, header_line = "", None
        elif not in_function:
            if header_line is None and not ch.isspace():
                header_line = line
            header += ch


def source_files(root, dirs):
    for d in dirs:
        for base, subdirs, files in os.walk(os.path.join(root, d)):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("build"))
            for f in sorted(files):
                if f.endswith(SOURCE_EXTENSIONS) and ".pb." not in f:
                    path = os.path.join(base, f)
                    yield os.path.relpath(path, root), path


def read_allow_list(path):
    if not path or not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8") as f:
        return {l.split("#")[0].strip() for l in f if l.split("#")[0].strip()}


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.dirname(here))
    parser.add_argument("--allow", default=os.path.join(here, "check_sizes_allow.txt"))
    parser.add_argument("--dirs", nargs="+", default=["core", "server", "cli"])
    args = parser.parse_args(argv)
    allowed = read_allow_list(args.allow)
    failures, reported = 0, 0
    for rel, path in source_files(args.root, args.dirs):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        problems = []
        n_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        if n_lines > MAX_FILE_LINES:
            problems.append(f"{rel}: {n_lines} lines (limit {MAX_FILE_LINES})")
        for name, first, last in find_functions(text):
            length = last - first + 1
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{rel}:{first}: {name}: {length} lines (limit {MAX_FUNCTION_LINES})")
        for p in problems:
            reported += 1
            if rel in allowed:
                print(f"{p} (allowed)")
            else:
                print(p)
                failures += 1
    print(f"check_sizes: {failures} over the limits, {reported - failures} allowed "
          f"(files > {MAX_FILE_LINES} lines, functions > {MAX_FUNCTION_LINES} lines)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
