"""An import-linter contract that import-linter lacks: no import circle between modules.

import-linter's ``layers`` contract forbids imports up the layers, but a circle inside one layer (two
modules of one app importing each other, even through a function-level import) passes it, and its
``acyclic_siblings`` contract also forbids circles between whole packages, which is more than we ask.
``no_module_cycles`` fails on every strongly connected set of modules (Tarjan), and names each import
that closes it, with its line. Loaded by ``.importlinter`` (``contract_types``); ``lint-imports`` runs it.
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def module_cycles(graph: ImportGraph, packages: list[str]) -> list[list[str]]:
    """Every set of two modules or more (of ``packages``) that import each other, directly or round a circle."""
    inside = sorted(m for m in graph.modules if any(m == p or m.startswith(p + ".") for p in packages))
    wanted = set(inside)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in inside:
        if root in index:
            continue
        # Iterative Tarjan: (module, its neighbours still to visit)
        work: list[tuple[str, list[str]]] = []
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work.append((root, sorted(graph.find_modules_directly_imported_by(root) & wanted)))
        while work:
            module, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.find_modules_directly_imported_by(nxt) & wanted)))
                elif nxt in on_stack:
                    low[module] = min(low[module], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


class NoModuleCyclesContract(Contract):
    type_name = "no_module_cycles"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        cycles = module_cycles(graph, list(self.packages))  # type: ignore[arg-type]
        imports: list[list[dict[str, Any]]] = []
        for cycle in cycles:
            members = set(cycle)
            lines = []
            for importer in cycle:
                for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
                    details = graph.get_import_details(importer=importer, imported=imported)
                    numbers = ", ".join(f"l.{d['line_number']}" for d in details)
                    lines.append({"importer": importer, "imported": imported, "lines": numbers})
            imports.append(lines)
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles, "imports": imports})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle, lines in zip(check.metadata["cycles"], check.metadata["imports"], strict=True):
            output.print_error(f"{len(cycle)} modules import each other: {', '.join(cycle)}")
            for line in lines:
                output.indent_cursor()
                output.print(f"- {line['importer']} -> {line['imported']} ({line['lines']})")
            output.new_line()
