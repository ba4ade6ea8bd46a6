"""Every Python function C# calls exists, with parameters that accept the arguments C# passes.

C# reaches Python only through `Invoke(module, "name", args…)` in src/LoraBridge.Python (PythonBridge*.cs). This test
reads those calls from the C# sources, so a renamed or removed Python function, or a parameter added or dropped on
either side, fails here, on a plain `pytest` run, instead of at the first generation that reaches the call.
"""
from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "src" / "LoraBridge.Python"

# The expression C# passes as `Invoke`'s first argument -> the module it stands for (PythonBridge.Module /
# PythonBridge.Diagnostics; `m` is the module a CallAsync body receives).
MODULE_OF = {"m": "lorabridge.bridge", "Module": "lorabridge.bridge", "_module": "lorabridge.bridge",
             "Diagnostics": "lorabridge.diagnostics"}

_CALL = re.compile(r"(?<![\w.])Invoke\(")
_CLOSE = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class Call:
    where: str  # file:line
    target: str  # first argument as written
    name: str | None  # the function name when the second argument is a string literal
    arity: int  # arguments after the name


def split_arguments(text: str, start: int) -> tuple[list[str], int]:
    """Top-level comma-separated arguments of the call whose '(' is at text[start - 1]; and the index after ')'."""
    args: list[str] = []
    depth: list[str] = []
    current = start
    i = start
    while i < len(text):
        c = text[i]
        if c in "\"'":
            i += 1
            while text[i] != c:
                i += 2 if text[i] == "\\" else 1
        elif c in _CLOSE:
            depth.append(_CLOSE[c])
        elif depth and c == depth[-1]:
            depth.pop()
        elif not depth and c in ",)":
            if text[current:i].strip():
                args.append(text[current:i].strip())
            current = i + 1
            if c == ")":
                return args, i + 1
        i += 1
    raise ValueError("unbalanced call")


def scan(text: str, file: str) -> list[Call]:
    calls = []
    for match in _CALL.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if text[line_start:match.start()].lstrip().startswith("//"):
            continue  # a comment that mentions the call
        args, _ = split_arguments(text, match.end())
        line = text.count("\n", 0, match.start()) + 1
        name = args[1][1:-1] if len(args) > 1 and re.fullmatch(r'"\w+"', args[1]) else None
        calls.append(Call(f"{file}:{line}", args[0] if args else "", name, len(args) - 2))
    return calls


def problems(calls: list[Call]) -> list[str]:
    """What is wrong with the calls against the Python modules (empty when every call fits)."""
    found = []
    for call in calls:
        if call.target.startswith("PyObject "):
            continue  # the helper's own declaration: Invoke(PyObject module, string name, params PyObject[] args)
        if call.name is None:
            found.append(f"{call.where}: the function name is not a string literal; this test cannot check it")
            continue
        module_name = MODULE_OF.get(call.target)
        if module_name is None:
            found.append(f"{call.where}: unknown module expression {call.target!r} (add it to MODULE_OF)")
            continue
        module: ModuleType = importlib.import_module(module_name)
        fn = getattr(module, call.name, None)
        if not callable(fn):
            found.append(f"{call.where}: {module_name}.{call.name} does not exist")
            continue
        try:
            inspect.signature(fn).bind(*([None] * call.arity))
        except TypeError as e:
            found.append(f"{call.where}: {module_name}.{call.name}{inspect.signature(fn)} called with {call.arity} "
                         f"argument(s): {e}")
    return found


def csharp_calls() -> list[Call]:
    calls = []
    for path in sorted(SOURCES.glob("*.cs")):
        calls += scan(path.read_text(encoding="utf-8"), path.name)
    return [c for c in calls if not c.target.startswith("PyObject ")]


def test_every_function_csharp_calls_exists_with_matching_parameters() -> None:
    calls = csharp_calls()
    names = {c.name for c in calls}
    # The scan itself works: it sees calls in several files, of both modules, with and without arguments.
    assert {"gen_load_checkpoint", "gen_step", "gen_start", "runtime_info", "echo", "busy_loop"} <= names
    assert {c.where.split(":")[0] for c in calls} >= {"PythonBridge.cs", "PythonBridge.Generation.cs",
                                                      "PythonBridge.Diagnostics.cs"}
    assert problems(csharp_calls()) == []


def test_architecture_doc_lists_exactly_the_functions_csharp_calls() -> None:
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Bridge functions C# calls"):]
    section = section[:section.index("\n## ", 1)]
    listed = set(re.findall(r"`(\w+)`", section)) - {"lorabridge"}
    called = {c.name for c in csharp_calls()}
    assert sorted(called - listed) == [], "called from C# but not listed in docs/ARCHITECTURE.md"
    assert sorted(listed - called) == [], "listed in docs/ARCHITECTURE.md but not called from C#"


def test_gen_start_is_seen_with_all_nine_arguments() -> None:
    starts = [c for c in csharp_calls() if c.name == "gen_start"]
    assert [c.arity for c in starts] == [9]


@pytest.mark.parametrize("source, expected", [
    ('Invoke(m, "gen_no_such_function")', "lorabridge.bridge.gen_no_such_function does not exist"),
    ('Invoke(m, "gen_release", new PyInt(1), new PyInt(2))', "called with 2 argument(s)"),
    ('Invoke(m, "gen_step", new PyInt(h), parts)', "called with 2 argument(s)"),
    ('Invoke(Diagnostics, "gen_release", new PyInt(1))', "lorabridge.diagnostics.gen_release does not exist"),
    ('Invoke(m, "echo", new PyString("x"))', "lorabridge.bridge.echo does not exist"),
    ('Invoke(other, "echo")', "unknown module expression 'other'"),
    ('Invoke(m, name, new PyInt(1))', "not a string literal"),
    ('// Invoke(m, "ignored")\nInvoke(m, "gen_no_such_function")', "gen_no_such_function does not exist"),
])
def test_a_wrong_name_arity_or_module_is_reported(source: str, expected: str) -> None:
    found = problems(scan(source, "X.cs"))
    assert len(found) == 1 and expected in found[0], found
    assert found[0].startswith(f"X.cs:{source.count(chr(10)) + 1}: ")


def test_arguments_are_split_at_top_level_only() -> None:
    text = ('Invoke(m, "f", new PyString(a == b ? "x, y)" : "(z"), new PyList(xs.Select(x => (PyObject)new PyInt(x))'
            '.ToArray()), new PyTuple([new PyString(\'"\'), PyObject.None]), Optional(s))')
    (call,) = scan(text, "X.cs")
    assert (call.name, call.arity) == ("f", 4)
    (optional_defaults,) = scan('Invoke(Diagnostics, "busy_loop", new PyFloat(s))', "X.cs")
    assert problems([optional_defaults]) == []  # busy_loop's `kind` has a default
