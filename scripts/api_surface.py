#!/usr/bin/env python3
# Reduces the symbol graphs of one module (MODULE.symbols.json and its MODULE@Other.symbols.json
# extension files) to the sorted text list of its public declarations that api/MODULE.txt holds:
# one line per symbol, "kind<TAB>path<TAB>declaration". Used by scripts/api_check.sh.
import glob
import json
import os
import re
import sys


def declaration(symbol):
    """The declaration as written, one line, without attributes that do not change the API."""
    text = "".join(f["spelling"] for f in symbol.get("declarationFragments", []))
    text = re.sub(r"\s+", " ", text).strip()
    return text


def lines(directory, module):
    out = set()
    files = [os.path.join(directory, module + ".symbols.json")]
    files += sorted(glob.glob(os.path.join(directory, module + "@*.symbols.json")))
    for path in files:
        if not os.path.exists(path):
            continue
        extended = os.path.basename(path)[len(module):-len(".symbols.json")].lstrip("@")
        graph = json.load(open(path))
        for s in graph.get("symbols", []):
            if s.get("accessLevel") not in ("public", "open"):
                continue
            kind = s["kind"]["identifier"].removeprefix("swift.")
            name = ".".join(s["pathComponents"])
            if extended:
                name = extended + "." + name
            out.add("%s\t%s\t%s" % (kind, name, declaration(s)))
        # Conformances added to other modules' types (e.g. `extension Array: Foo`).
        for r in graph.get("relationships", []):
            if r["kind"] == "conformsTo" and extended:
                source = r.get("sourceOrigin", {}).get("displayName") or r["source"]
                target = r.get("targetFallback") or r["target"]
                out.add("conformance\t%s.%s\t%s" % (extended, source, target))
    return sorted(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: api_surface.py SYMBOL_GRAPH_DIR MODULE")
    directory, module = sys.argv[1], sys.argv[2]
    if not os.path.exists(os.path.join(directory, module + ".symbols.json")):
        sys.exit("api_surface.py: no symbol graph %s/%s.symbols.json" % (directory, module))
    for line in lines(directory, module):
        print(line)
