"""The API reference reads as documentation: every public function and method of the library with more
than one argument names them in an Args section, and a Returns (or Yields) section when it returns a
value. A method that overrides a documented one of a base class inherits its documentation, and a
class's docstring may document its constructor."""
import ast
import importlib
import inspect
import pkgutil
import textwrap

PACKAGES = ("games", "sde", "flows", "analysis", "gandyn")


def modules():
    for package in PACKAGES:
        yield importlib.import_module(package)
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, prefix=f"{package}."):
            if ".experiments." not in info.name and not any(p.startswith("_") for p in info.name.split(".")):
                yield importlib.import_module(info.name)


def returns_value(function) -> bool:
    """Whether ``function``'s own body has a ``return <value>`` (not counting nested functions)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return False
    body = tree.body[0]
    stack, found = list(body.body), False
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            found = True
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            found = True
        stack.extend(ast.iter_child_nodes(node))
    return found


def arguments(function) -> list:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return []
    return [n for n in parameters if n not in ("self", "cls")]


def inherited(cls, function) -> bool:
    """Whether a base class of ``cls`` documents ``function``'s method, with every argument the override takes."""
    for base in cls.__mro__[1:]:
        method = getattr(base, function.__name__, None)
        doc = getattr(method, "__doc__", None) or ""
        open_ended = method is not None and any(  # a base taking **options covers an override's named options
            p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(method).parameters.values())
        if "Args:" in doc and (open_ended or set(arguments(function)) <= documented_names(doc)):
            return True
    return False


def documented_names(doc: str) -> set:
    """The parameter names of a Google-style docstring's Args and Attributes sections."""
    names, inside, indent = set(), False, None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Attributes:"):
            inside, indent = True, None
            continue
        if not inside:
            continue
        depth = len(line) - len(line.lstrip())
        if stripped and depth == 0:
            inside = False
            continue
        if stripped and (indent is None or depth == indent):
            indent = depth
            names.add(stripped.split(":")[0].split(" (")[0].lstrip("*").strip())
    return names


def problems(function, where: str, cls=None) -> list:
    if len(arguments(function)) < 2 or (cls is not None and inherited(cls, function)):
        return []
    doc = inspect.getdoc(function) or ""
    if function.__name__ == "__init__" and cls is not None:
        doc += inspect.getdoc(cls) or ""  # a class may document its constructor's arguments (dataclasses must)
    documented = "Args:" in doc or (function.__name__ == "__init__" and "Attributes:" in doc)
    found = [] if documented else [f"{where}: no Args"]
    missing = [n for n in arguments(function) if n.lstrip("*") not in documented_names(doc)]
    if documented and missing:
        found.append(f"{where}: Args lacks {', '.join(missing)}")
    if function.__name__ != "__init__" and returns_value(function) and "Returns:" not in doc and "Yields:" not in doc:
        found.append(f"{where}: no Returns")
    return found


def undocumented() -> list:
    found = []
    for module in modules():
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                found += problems(obj, f"{module.__name__}.{name}")
            elif inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    function = getattr(member, "__func__", member)
                    if (inspect.isfunction(function) and function.__module__ == module.__name__
                            and (not attr.startswith("_") or attr == "__init__")):
                        found += problems(function, f"{module.__name__}.{name}.{attr}", obj)
    return found


def test_public_functions_document_their_arguments_and_results():
    missing = undocumented()
    assert not missing, f"{len(missing)} docstrings lack sections:\n" + "\n".join(missing)
