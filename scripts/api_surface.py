#!/usr/bin/env python3
# Reduces the symbol graphs of one module (MODULE.symbols.json and its MODULE@Other.symbols.json
# extension files, from `swift package dump-symbol-graph`) to the sorted text list of its public
# declarations that api/MODULE.txt holds, one line per symbol: "kind<TAB>path<TAB>declaration",
# plus one line per conformance and per re-exported module or declaration (`@_exported import`
# lines of the module's sources; a scoped one, e.g. `import enum IndexCore.Metric`, lists that
# type's public symbols too). Used by scripts/api_check.sh.
import glob
import json
import os
import re
import sys

EXPORT = re.compile(r"^\s*@_exported\s+(?:public\s+)?import\s+(?:(\w+)\s+)?(\w+)(?:\.(\w+))?\s*$")


def declaration(symbol):
    """The declaration as written, on one line (`open` added when it is open)."""
    text = "".join(f["spelling"] for f in symbol.get("declarationFragments", []))
    text = re.sub(r"\s+", " ", text).strip()
    return ("open " + text) if symbol.get("accessLevel") == "open" else text


def graph_lines(directory, module, prefix="", only=None):
    """Public symbols and conformances of `module`'s graphs; `only`: keep paths under this type."""
    out = set()
    files = [os.path.join(directory, module + ".symbols.json")]
    files += sorted(glob.glob(os.path.join(directory, module + "@*.symbols.json")))
    for path in files:
        if not os.path.exists(path):
            continue
        extended = os.path.basename(path)[len(module):-len(".symbols.json")].lstrip("@")
        graph = json.load(open(path))
        paths = {}
        for s in graph.get("symbols", []):
            name = ".".join(s["pathComponents"])
            if extended:
                name = extended + "." + name
            paths[s["identifier"]["precise"]] = name
            if s.get("accessLevel") not in ("public", "open"):
                continue
            if only and s["pathComponents"][0] != only:
                continue
            kind = s["kind"]["identifier"].removeprefix("swift.")
            out.add("%s\t%s%s\t%s" % (kind, prefix, name, declaration(s)))
        for r in graph.get("relationships", []):
            if r["kind"] not in ("conformsTo", "inheritsFrom") or r["source"] not in paths:
                continue
            source = paths[r["source"]]
            if only and source.split(".")[0] != only:
                continue
            target = paths.get(r["target"]) or r.get("targetFallback") or r["target"]
            if target == "Swift.SendableMetatype":  # implied by Sendable; newer toolchains list it
                continue
            out.add("%s\t%s%s\t%s" % (r["kind"], prefix, source, target))
    return out


def reexports(sources):
    """(kind, module, declaration or None) of each `@_exported import` in the module's sources."""
    found = []
    for f in sorted(glob.glob(os.path.join(sources, "**", "*.swift"), recursive=True)):
        for line in open(f, encoding="utf-8"):
            m = EXPORT.match(line)
            if m:
                found.append(m.groups())
    return found


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: api_surface.py SYMBOL_GRAPH_DIR MODULE [MODULE_SOURCES_DIR]")
    directory, module = sys.argv[1], sys.argv[2]
    if not os.path.exists(os.path.join(directory, module + ".symbols.json")):
        sys.exit("api_surface.py: no symbol graph %s/%s.symbols.json" % (directory, module))
    lines = graph_lines(directory, module)
    if len(sys.argv) == 4:
        for kind, other, decl in reexports(sys.argv[3]):
            if decl is None:
                lines.add("reexport\t%s\t@_exported import %s" % (other, other))
            else:
                lines.add("reexport\t%s.%s\t@_exported import %s %s.%s" % (other, decl, kind, other, decl))
                lines |= graph_lines(directory, other, prefix=other + ".", only=decl)
    for line in sorted(lines):
        print(line)
