#!/usr/bin/env python3
"""The table of fatal messages in docs/debugging.md against the code.

    python3 fatal_messages_check.py SOURCE_DIR

Every message spangc can die with (each spangc_throw format string in
gc/ and runtime/) must have a row in the table, and every message in the
table's first column must still be one the code has. In the table a
value is a capital placeholder (A, N, EXPR), a %s may be spelled out
("full/partial"), and "..." may end a message early.
"""
import glob
import os
import re
import sys

CONVERSION = re.compile(r"%[-#0-9.]*(?:ll|l|z)?[a-z]")


def code_messages(root):
    found = []
    for path in sorted(glob.glob(os.path.join(root, "gc", "*.[ch]")) +
                       glob.glob(os.path.join(root, "runtime", "*.[ch]"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for call in re.finditer(r'spangc_throw\(((?:\s*"(?:[^"\\]|\\.)*")+)', text):
            literals = re.findall(r'"((?:[^"\\]|\\.)*)"', call.group(1))
            # "%%" prints "%": no conversion.
            found.append((os.path.relpath(path, root), "".join(literals).replace("%%", "%")))
    return found


def table_messages(root):
    with open(os.path.join(root, "docs", "debugging.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Fatal messages"):]
    following = section.find("\n## ", 1)
    if following >= 0:
        section = section[:following]
    rows = [l for l in section.splitlines() if l.startswith("| `")]
    entries = []
    for row in rows:
        first = row.split(" | ")[0]
        # Backticked messages, but not the ones a parenthesis describes
        # (lines printed before the fatal one).
        outside = re.sub(r"\([^)]*`[^)]*\)", "", first)
        entries += re.findall(r"`([^`]+)`", outside)
    return entries


def pattern(message, cut=None):
    """A regex for the table's spelling of message, optionally ended by
    "..." in place of its conversion number cut and all after it."""
    parts = CONVERSION.split(message)
    convs = CONVERSION.findall(message)
    out = re.escape(parts[0])
    for i, conv in enumerate(convs):
        if cut == i:
            return out + r"\.\.\."
        out += r".+?" if conv == "%s" else r"(?:[A-Z]+|\.\.\.)"
        out += re.escape(parts[i + 1])
    return out


def matches(message, entry):
    n = len(CONVERSION.findall(message))
    return any(re.fullmatch(pattern(message, cut), entry) for cut in [None] + list(range(n)))


def main():
    root = sys.argv[1]
    code = code_messages(root)
    table = table_messages(root)
    if len(code) < 20 or len(table) < 20:
        sys.exit(f"found only {len(code)} messages in the code and {len(table)} in the table")
    bad = 0
    for path, message in code:
        if not any(matches(message, entry) for entry in table):
            print(f"{path}: '{message}' has no row in docs/debugging.md's fatal messages")
            bad += 1
    for entry in table:
        if not any(matches(message, entry) for _, message in code):
            print(f"docs/debugging.md: '{entry}' is no message of the code's")
            bad += 1
    print(f"{len(code)} messages in the code, {len(table)} in the table, {bad} unmatched")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
