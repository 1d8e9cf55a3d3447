#!/usr/bin/env python3
"""Which files include which libraries: the claims hold, and no other is made.

docs/design.md has one table, "Who includes what", that says which files
include each library (curl, jansson, OpenSSL, SQLite, FUSE, ...) and each
header private to a folder. The compiler sees only part of this (system
headers are on every include path), so this script, run by `meson test`,
checks the table against the sources: a listed file set must be exactly
the files that include the header; a folder pattern (`fs/*`) must hold
every such file. It also fails on a claim of the kind "the only file that
includes ..." anywhere else in the sources and docs, since only the table
is checked.

Whatever the table says, the house's fixed rules hold too (HOUSE): only
core/ includes SQLite, only platform/ curl and OpenSSL, only fs/ FUSE; a
family file that includes <sqlite3.h> fails even if a row names it.
"""

import fnmatch
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE_DOC = ROOT / "docs" / "design.md"
SOURCES = ("daemon", "fs")
PROSE = ("daemon", "fs", "docs", "README.md", "meson.build")
CLAIM = re.compile(r"\bonly\s+(?:file|files|one|ones|place|places)\s+(?:that|to|which)\s+includ",
                   re.I)
HOUSE = (
    ("<sqlite3.h>", "daemon/core/*", "only core/ keeps journals: use core/queue.h or records.h"),
    ("<curl/*>", "daemon/platform/*", "only platform/ talks to the network"),
    ("<openssl/*>", "daemon/platform/*", "only platform/ signs and hashes"),
    ("<fuse*>", "fs/*", "only fs/ knows FUSE"),
)
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"][^>"]+[>"])', re.M)


def table_rows():
    text = TABLE_DOC.read_text()
    start = text.index("## Who includes what")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        headers = re.findall(r"`([^`]+)`", cells[0])
        files = re.findall(r"`([^`]+)`", cells[1])
        rows.append((headers, files))
    return rows


def includes():
    found = {}
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in (".c", ".h"):
                rel = path.relative_to(ROOT).as_posix()
                found[rel] = INCLUDE.findall(path.read_text())
    return found


def check_table(errors):
    rows = table_rows()
    if not rows:
        errors.append(f"{TABLE_DOC.name}: no rows under '## Who includes what'")
    inc = includes()
    for headers, allowed in rows:
        users = {f for f, names in inc.items()
                 if any(fnmatch.fnmatchcase(n, h) for n in names for h in headers)}
        listed = {a for a in allowed if not any(ch in a for ch in "*?[")}
        patterns = [a for a in allowed if a not in listed]
        outside = {u for u in users - listed
                   if not any(fnmatch.fnmatchcase(u, p) for p in patterns)}
        for u in sorted(outside):
            errors.append(f"{u} includes {' or '.join(headers)}, which the table in "
                          f"docs/design.md does not allow")
        for f in sorted(listed - users):
            errors.append(f"docs/design.md lists {f} for {' or '.join(headers)}, "
                          f"but it does not include it")


def check_house(errors, inc=None):
    inc = includes() if inc is None else inc
    for header, allowed, why in HOUSE:
        for f, names in sorted(inc.items()):
            if any(fnmatch.fnmatchcase(n, header) for n in names) and \
                    not fnmatch.fnmatchcase(f, allowed):
                errors.append(f"{f} includes {header}, which only {allowed} may ({why})")


def check_prose(errors):
    for top in PROSE:
        p = ROOT / top
        paths = [p] if p.is_file() else sorted(p.rglob("*"))
        for path in paths:
            if not path.is_file() or path.suffix not in (".c", ".h", ".md", ".build", ""):
                continue
            text = path.read_text(errors="replace")
            if path == TABLE_DOC:
                text = text.replace(text[text.index("## Who includes what"):], "")
            for m in CLAIM.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                errors.append(f"{path.relative_to(ROOT)}:{line}: a claim about who includes "
                              f"what; make it a row of docs/design.md's table, which is checked")


def main():
    errors = []
    check_table(errors)
    check_house(errors)
    check_prose(errors)
    for e in errors:
        print(f"check_layers: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"check_layers: {len(table_rows())} rows of docs/design.md hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
