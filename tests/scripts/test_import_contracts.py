"""The no-circles contract `make test` runs through lint-imports (scripts/import_contracts.py)."""

from __future__ import annotations

from grimp import ImportGraph

from scripts.import_contracts import NoModuleCyclesContract, module_cycles


def _graph(*imports: tuple[str, str]) -> ImportGraph:
    graph = ImportGraph()
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    return graph


def test_a_chain_that_only_goes_down_has_no_circle():
    graph = _graph(("app.views", "app.actions"), ("app.actions", "app.models"), ("app.views", "app.models"))
    assert module_cycles(graph, ["app"]) == []


def test_two_modules_importing_each_other_are_a_circle():
    graph = _graph(("app.actions", "app.tasks"), ("app.tasks", "app.actions"), ("app.views", "app.actions"))
    assert module_cycles(graph, ["app"]) == [["app.actions", "app.tasks"]]


def test_a_circle_across_packages_is_found_whole_and_once():
    graph = _graph(
        ("one.a", "two.b"),
        ("two.b", "three.c"),
        ("three.c", "one.a"),
        ("three.c", "three.d"),  # leaves the circle: not part of it
        ("four.x", "four.y"),
        ("four.y", "four.x"),
    )
    assert module_cycles(graph, ["one", "two", "three", "four"]) == [
        ["four.x", "four.y"],
        ["one.a", "three.c", "two.b"],
    ]
    assert module_cycles(graph, ["one", "two"]) == []  # only modules of the packages named count


def test_the_contract_is_broken_by_a_circle_and_names_its_imports():
    # Built without import-linter's option parsing: under the test run, zope.interface (Twisted) gives
    # classes a __provides__ that dir() lists and getattr refuses, which that parsing trips on.
    contract = object.__new__(NoModuleCyclesContract)
    contract.packages = ["app"]
    kept = contract.check(_graph(("app.a", "app.b")), verbose=False)
    broken = contract.check(_graph(("app.a", "app.b"), ("app.b", "app.a")), verbose=False)
    assert kept.kept
    assert not broken.kept
    assert broken.metadata["imports"] == [
        [
            {"importer": "app.a", "imported": "app.b", "lines": "l.1"},
            {"importer": "app.b", "imported": "app.a", "lines": "l.1"},
        ]
    ]
