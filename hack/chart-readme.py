#!/usr/bin/env python3
"""The values table of charts/tumbler/README.md, generated from the comments of
charts/tumbler/values.yaml (the comment lines right above a key describe it).

    hack/chart-readme.py           rewrite the table between the README's markers
    hack/chart-readme.py --check   fail when the README is not current, or when a value
                                   has no comment or is missing from values.schema.json

Only the block and flow YAML values.yaml uses are understood (no multi-line strings), so
it needs nothing beyond Python's standard library.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "tumbler"
START, END = "<!-- values:start -->", "<!-- values:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?: (?P<value>.*))?$")


def rows(text):
    """(dotted key, default, description, is_leaf) for every key, in file order."""
    stack, comment, out = [], [], []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
            continue
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        m = KEY.match(line)
        if not m:
            sys.exit(f"chart-readme: cannot read values.yaml line: {line!r}")
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [m["key"]])
        value = (m["value"] or "").split(" #")[0].strip()
        out.append((path, value, " ".join(comment), value != ""))
        if value == "":
            stack.append((indent, m["key"]))
        comment = []
    return out


def schema_node(schema, path):
    """The schema of a dotted key, or None when the schema does not name it."""
    node = schema
    for part in path.split("."):
        node = node.get("properties", {}).get(part)
        if node is None:
            return None
    return node


def collapse(entries, schema):
    """A block whose schema is free-form (an object without named properties, such as a
    security context) is one row, its children shown as its default."""
    out, skip = [], None
    for i, (path, value, description, leaf) in enumerate(entries):
        if skip and path.startswith(skip):
            continue
        skip = None
        node = schema_node(schema, path)
        if not leaf and node is not None and "properties" not in node:
            children = [(p[len(path) + 1:], v) for p, v, _, _ in entries[i + 1:] if p.startswith(path + ".")]
            value = "{" + ", ".join(f"{k}: {v}" for k, v in children) + "}"
            out.append((path, value, description, True))
            skip = path + "."
        else:
            out.append((path, value, description, leaf))
    return out


def table(entries):
    lines = ["| Value | Default | Description |", "| --- | --- | --- |"]
    for path, value, description, leaf in entries:
        default = f"`{value}`" if leaf else ""
        lines.append(f"| `{path}` | {default} | {description.replace('|', '&#124;')} |")
    return "\n".join(lines)


def main():
    check = "--check" in sys.argv[1:]
    schema = json.loads((CHART / "values.schema.json").read_text())
    entries = collapse(rows((CHART / "values.yaml").read_text()), schema)
    problems = [f"{p}: no comment in values.yaml" for p, _, d, leaf in entries if leaf and not d]
    problems += [f"{p}: not in values.schema.json" for p, _, _, _ in entries if schema_node(schema, p) is None]
    entries = [e for e in entries if e[3] or e[2]]
    readme_path = CHART / "README.md"
    readme = readme_path.read_text()
    if START not in readme or END not in readme:
        sys.exit(f"chart-readme: {readme_path} lacks the markers {START} and {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    wanted = f"{head}{START}\n{table(entries)}\n{END}{tail}"
    if check:
        if wanted != readme:
            problems.append(f"{readme_path.relative_to(ROOT)} is not current: run hack/chart-readme.py")
    else:
        readme_path.write_text(wanted)
    for p in problems:
        print(f"chart-readme: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
