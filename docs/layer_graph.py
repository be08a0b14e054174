"""Draw the package layers of docs/CONTRACTS.md from the code's imports (grimp, import-linter's graph).

    python docs/layer_graph.py           # rewrite the picture between the markers in docs/CONTRACTS.md
    python docs/layer_graph.py --check   # exit 1 when the committed picture is not the code's (a test runs it)

An arrow ``A --> B`` with label n: n imports (importing module, imported module) of package A reach into
package B, counting imports inside functions too. The picture is a Mermaid flowchart: GitHub and most
Markdown viewers draw it; the text itself reads as a list of edges.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reports", "experiments", "lightning_modules", "datamodules", "metrics", "core")
CONTRACTS = ROOT / "docs" / "CONTRACTS.md"
BEGIN, END = "<!-- layer graph: python docs/layer_graph.py -->", "<!-- end of layer graph -->"


def edges() -> dict[tuple[str, str], int]:
    """(importer package, imported package) -> number of module-to-module imports between them."""
    import grimp

    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    out = {}
    for a in PACKAGES:
        for b in PACKAGES:
            if a != b:
                found = {(i["importer"], i["imported"])
                         for expr in (f"{a} -> {b}.**", f"{a}.** -> {b}", f"{a}.** -> {b}.**", f"{a} -> {b}")
                         for i in graph.find_matching_direct_imports(import_expression=expr)}
                if found:
                    out[(a, b)] = len(found)
    return out


def mermaid() -> str:
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"    {a} -->|{n}| {b}" for (a, b), n in sorted(edges().items(),
                                                             key=lambda e: (PACKAGES.index(e[0][0]),
                                                                            PACKAGES.index(e[0][1])))]
    lines.append("```")
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` (CONTRACTS.md) with the picture between the markers replaced by the code's."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    text = CONTRACTS.read_text()
    new = render(text)
    if "--check" in argv:
        if new != text:
            print(f"{CONTRACTS}: the layer picture is not the code's; run `python docs/layer_graph.py`",
                  file=sys.stderr)
            return 1
        return 0
    from core.atomic import write_text

    write_text(CONTRACTS, new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
