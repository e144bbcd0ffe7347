"""The package stays readable: no module over 300 lines, no function over 60."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vesper_fairseq"
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def modules():
    found = sorted(PACKAGE.rglob("*.py"))
    assert len(found) > 50
    return found


def test_no_module_over_300_lines():
    long = {}
    for path in modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES:
            long[str(path.relative_to(PACKAGE))] = lines
    assert not long, f"modules over {MAX_FILE_LINES} lines: {long}"


def test_no_function_over_60_lines():
    long = {}
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = node.end_lineno - start + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_module_re_exports_another_modules_names():
    """One path per name: only the package root re-exports (load_encoder, EmotionClassifier)."""
    import importlib
    import inspect

    found = {}
    for path in modules():
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        if name == "vesper_fairseq":
            continue
        module = importlib.import_module(name)
        for export in getattr(module, "__all__", []):
            home = inspect.getmodule(getattr(module, export))
            if home is not None and home.__name__ != name:
                found[f"{name}.{export}"] = home.__name__
    assert not found, f"names exported from a second path: {found}"
