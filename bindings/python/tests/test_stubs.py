"""The type stubs (nscache/__init__.pyi) describe exactly what the extension
offers: every public name, class, method and keyword argument."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import nscache

STUBS = Path(nscache.__file__).with_name("__init__.pyi")


def stub_tree() -> ast.Module:
    return ast.parse(STUBS.read_text())


def test_stubs_are_installed_with_the_package() -> None:
    assert STUBS.exists()
    assert Path(nscache.__file__).with_name("py.typed").exists()


def test_every_public_name_matches() -> None:
    tree = stub_tree()
    stubbed = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stubbed.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
        elif isinstance(node, ast.Assign):
            stubbed.update(t.id for t in node.targets if isinstance(t, ast.Name))
    assert stubbed == set(nscache.__all__)


def test_every_method_and_argument_matches() -> None:
    for node in stub_tree().body:
        if not isinstance(node, ast.ClassDef) or node.name in ("DefaultTtl",):
            continue
        cls = getattr(nscache, node.name)
        if issubclass(cls, BaseException):
            assert issubclass(cls, nscache.Error) or cls is nscache.Error
            continue
        stubbed = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
        offered = {name for name in dir(cls) if not name.startswith("_")}
        assert set(stubbed) == offered, node.name
        for name, fn in stubbed.items():
            attr = inspect.getattr_static(cls, name)
            if isinstance(attr, property) or type(attr).__name__ == "getset_descriptor":
                continue
            target = getattr(cls, name)
            params = list(inspect.signature(target).parameters.values())
            stub_args = [a.arg for a in fn.args.args + fn.args.kwonlyargs]
            if stub_args and stub_args[0] == "self":
                stub_args = stub_args[1:]
            names = [p.name for p in params if p.name != "self"]
            assert names == stub_args, f"{node.name}.{name}: {names} != {stub_args}"
            kwonly = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
            assert kwonly == [a.arg for a in fn.args.kwonlyargs], f"{node.name}.{name}"
