#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/abi.py LIB INCLUDE_DIR MAP - the library exports exactly its public functions.

Three lists must agree: the functions the built library exports (nm -D --defined-only), the
functions declared in the public headers (INCLUDE_DIR/urio/*.h, static inline ones excepted), and
the symbols the version script (MAP) lists one by one. Any difference fails with the names, each
in the list it is missing from, so that an ABI change is always a reviewed diff of MAP.
"""
import re
import subprocess
import sys
from pathlib import Path


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    names = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[1] == "A":  # "A": a version node, not a symbol
            continue
        name, _, version = parts[2].partition("@")
        names[name] = version.lstrip("@")
    return names


def strip_braces(text):
    """Drops every {...} block (struct bodies, static inline bodies), keeping a ';' in its place."""
    out, depth = [], 0
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append(";")
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def declared(include_dir):
    names = {}
    for header in sorted(Path(include_dir, "urio").glob("*.h")):
        text = header.read_text()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        text = re.sub(r"#\s*if(?:def)?\s+(?:defined\s*\(?\s*)?__cplusplus.*?#\s*endif", " ", text,
                      flags=re.S)  # extern "C" { ... }: its braces would hide every declaration
        text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
        for stmt in strip_braces(text).split(";"):
            stmt = " ".join(stmt.split())
            if re.match(r"(typedef|extern \"C\")\b", stmt) or re.search(r"\bstatic\b", stmt):
                continue
            m = re.search(r"\b(ur_\w+)\s*\(", stmt)
            if m and not re.search(r"\(\s*\*\s*" + m.group(1), stmt):
                names[m.group(1)] = header.name
    return names


def mapped(map_path):
    text = re.sub(r"/\*.*?\*/", " ", Path(map_path).read_text(), flags=re.S)
    text = re.sub(r"#[^\n]*", " ", text)
    names, problems = {}, []
    for node, body in re.findall(r"([\w.]+)\s*\{(.*?)\}\s*[\w.\s]*;", text, flags=re.S):
        globals_ = re.search(r"global:(.*?)(?:local:|$)", body, flags=re.S)
        for sym in re.findall(r"([^\s;]+)\s*;", globals_.group(1) if globals_ else ""):
            if any(c in sym for c in "*?["):
                problems.append(f"{node}: '{sym}' is a pattern; list every symbol by name")
            elif sym in names:
                problems.append(f"'{sym}' is listed twice ({names[sym]} and {node})")
            else:
                names[sym] = node
    return names, problems


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    lib, include_dir, map_path = sys.argv[1:]
    exp, dec = exported(lib), declared(include_dir)
    mapn, problems = mapped(map_path)
    checks = [
        ("exported by the library but declared in no public header", set(exp) - set(dec)),
        ("declared in a public header but not exported", set(dec) - set(exp)),
        (f"exported but missing from {map_path}", set(exp) - set(mapn)),
        (f"listed in {map_path} but not exported (no such function?)", set(mapn) - set(exp)),
    ]
    for name in sorted(set(exp) & set(mapn)):
        if exp[name] != mapn[name]:
            problems.append(f"'{name}' is exported as version {exp[name] or '(none)'}, "
                            f"the map lists it under {mapn[name]}")
    bad = bool(problems)
    for what, names in checks:
        if names:
            bad = True
            print(f"{what}:")
            for n in sorted(names):
                where = dec.get(n)
                print(f"  {n}" + (f"  ({where})" if where else ""))
    for p in problems:
        print(p)
    if bad:
        print("A public function is declared with UR_EXPORT in include/urio/ and listed by name in "
              "the map, under the version that adds it (docs/design.md, 'ABI').")
        return 1
    print(f"abi: {len(exp)} functions, declared, exported and listed in the map alike")
    return 0


if __name__ == "__main__":
    sys.exit(main())
