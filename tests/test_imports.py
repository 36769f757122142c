"""textedit's modules import each other without cycles, never import the package ``__init__``,
and import inside a function only where that defers a slow library, each such place named here
with its reason. Read from the source with ``ast``: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "textedit"

#: what each module of the command line (``textedit/cli/``) imports inside its functions, when a
#: command runs, after its checks (the package's top imports neither torch nor transformers, so
#: `textedit apply --help` and `textedit apply missing.json` take a fraction of a second, not five;
#: the spec parser, ``concepts`` and ``settings`` are read at the top)
CLI_DEFERRED = {f"textedit.cli.{module}": targets for module, targets in {
    "options": ("torch", "huggingface_hub", "transformers", "textedit.encoders", "textedit.pipelines",
                "textedit.profile"),
    "report": ("textedit.erase", "textedit.floor"),
    "edit": ("textedit.encoders",),
    "patches": ("textedit.anchor", "textedit.encoders", "textedit.export", "textedit.metrics", "textedit.patch"),
    "evaluate": ("textedit.editor", "textedit.encoders", "textedit.eval.benchmark", "textedit.eval.knowledge",
                 "textedit.eval.run", "textedit.eval.world", "textedit.io"),
    "tune": ("textedit.editor", "textedit.eval.knowledge", "textedit.profile", "textedit.progress", "textedit.tune"),
    "diffusion": ("textedit.anchor", "textedit.anchor_lora", "textedit.patch", "textedit.pipelines",
                  "textedit.verify.generate", "textedit.verify.metrics", "textedit.verify.report",
                  "textedit.verify.verifier"),
    "models": ("textedit.distributed", "textedit.fetch", "textedit.io", "textedit.locate", "textedit.profile",
               "textedit.stats"),
}.items()}

#: every import made inside a function, as (module, what it imports): why it waits there
DEFERRED = {
    ("textedit._entry", "textedit.cli"): "the console script's Ctrl-C handler is in place before torch imports",
    ("textedit.cli.diffusion", "diffusers"): "diffusers takes seconds to import; only verify turns its progress bar "
                                             "off",
    ("textedit.anchor", "diffusers"): "diffusers takes seconds to import; apply's add_anchor needs none of it",
    ("textedit.anchor_lora", "peft"): "peft is an optional extra (textedit[lora]): only a LoRA on the denoiser "
                                      "needs it, and its absence is told in one line",
    ("textedit.pipelines.families", "diffusers"): "diffusers takes seconds to import; a local folder needs none",
    **{("textedit.pipelines.families", target): "the families are declarations, read without torch: `textedit "
       "apply --help` lists them and `--pipeline` is checked before torch loads"
       for target in ("torch", "transformers", "textedit.encoders")},
    ("textedit.pipelines.loading", "diffusers"): "diffusers takes seconds to import; only loading a pipeline needs it",
    ("textedit.locate", "matplotlib"): "matplotlib takes a second to import and only draws the heatmap",
    **{("textedit.apply", target): "the command line reads apply's checks (a spec against the options) before "
       "torch loads; what computes is imported when apply_spec runs"
       for target in ("textedit.anchor", "textedit.editor", "textedit.encoders", "textedit.erase", "textedit.floor",
                      "textedit.metrics", "textedit.patch", "textedit.pipelines", "textedit.preserve",
                      "textedit.profile", "textedit.sequential")},
    ("textedit.profile", "textedit.io"): "io imports torch; reading a profile does not need it",
    ("textedit.profile", "textedit.editor"): "the editor imports torch; reading a profile does not need it",
    ("textedit.tune", "textedit.locate"): "only the proposal of layer windows reads causal traces",
    **{(f"textedit.methods.{path.stem}", "textedit.solvers"): "the solvers import torch (seconds); a method's "
       "declaration (name, summary, knobs) is read without it, as `textedit --help` reads it"
       for path in (PACKAGE / "methods").glob("*.py") if path.stem not in ("__init__", "base")},
    **{(module, target): "a command imports what it computes with when it runs: torch and transformers take "
       "seconds, and `textedit --help` needs neither" for module, targets in CLI_DEFERRED.items() for target in targets},
}

#: imports for annotations only (``if TYPE_CHECKING:``): why each module does not import them
#: when it runs. They count as edges of the module graph all the same (``top_level_imports``
#: walks module-level ``if`` blocks), so none of them can hide a cycle
TYPE_CHECKED = {
    "textedit.apply": "apply's checks are read by the command line before torch loads (`textedit apply x.json`)",
    "textedit.pipelines.families": "the families are declarations, read without torch (`--pipeline`'s choices)",
    "textedit.concepts": "an erasure is declared without torch: the CLI and the spec parser check it before torch loads",
    **{f"textedit.methods.{path.stem}": "a method's declaration is read without torch (`textedit --help`)"
       for path in (PACKAGE / "methods").glob("*.py") if path.stem != "__init__"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules ``node`` (in ``module``) imports: a name imported from a package is the
    submodule of that name where there is one, else the package itself."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        base = node.module
    else:
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def top_level_imports(module: str) -> list[tuple[ast.stmt, str]]:
    """(statement, imported module) of the imports that run when ``module`` is imported: those of
    its body, also inside module-level ``if`` and ``try`` blocks."""
    found = []
    statements = list(ast.parse(MODULES[module].read_text()).body)
    while statements:
        node = statements.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += [(node, target) for target in imported(module, node)]
        elif isinstance(node, (ast.If, ast.Try)):
            statements += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                           *(s for handler in getattr(node, "handlers", []) for s in handler.body)]
    return found


def packages_of(module: str) -> list[str]:
    """The packages whose ``__init__`` runs before ``module`` does, innermost last."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def dependency_graph() -> dict[str, set[str]]:
    """``textedit`` module → the ``textedit`` modules importing it runs first: what it imports
    at the top, and the packages those live in (their ``__init__`` runs before them), less
    the packages ``module`` itself lives in (already being imported when it runs)."""
    graph = {}
    for module in MODULES:
        targets = {t for _, t in top_level_imports(module) if t.split(".")[0] == "textedit"}
        graph[module] = {m for t in targets for m in (*packages_of(t), t)} - {*packages_of(module), module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as the modules along it (first = last), or ``None``."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once every path from it is explored
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for nxt in sorted(graph[module]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def function_level_imports() -> list[tuple[str, ast.FunctionDef, ast.stmt]]:
    """(module, function, statement) of every import inside a function or method."""
    found = []
    for module, path in MODULES.items():
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found += [(module, function, node) for node in ast.walk(function)
                          if isinstance(node, (ast.Import, ast.ImportFrom))]
    return found


def test_the_module_graph_holds_every_module_and_its_real_edges():
    graph = dependency_graph()
    assert set(graph) == set(MODULES) and len(MODULES) > 40
    assert {"textedit.encoders.base", "textedit.encoders", "textedit.solvers"} <= graph["textedit.patch"]
    assert "textedit.encoders" not in graph["textedit.encoders.bert"]  # its own package: already importing


def test_no_cycle_among_textedit_modules():
    cycle = find_cycle(dependency_graph())
    assert cycle is None, " → ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_the_package_init():
    """The root ``__init__`` is the lazy public API (``_EXPORTS``); a module that imported it
    would run upward. The version, the one thing it held, is ``textedit.version``."""
    importers = [module for module, path in MODULES.items() for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, (ast.Import, ast.ImportFrom)) and "textedit" in imported(module, node)]
    assert importers == []


def test_imports_for_annotations_only_are_allowed_with_their_reason_and_count_as_edges():
    found = {module for module, path in MODULES.items() if "TYPE_CHECKING" in path.read_text()}
    assert found == set(TYPE_CHECKED), (f"not allowed: {sorted(found - set(TYPE_CHECKED))}; "
                                        f"allowed but gone: {sorted(set(TYPE_CHECKED) - found)}")
    assert {"textedit.stats", "textedit.solvers"} <= dependency_graph()["textedit.methods.base"]


def test_every_import_inside_a_function_is_allowed_with_its_reason():
    found = {(module, target if target.startswith("textedit") else target.split(".")[0])
             for module, _, node in function_level_imports() for target in imported(module, node)}
    assert found == set(DEFERRED), (f"not allowed: {sorted(found - set(DEFERRED))}; "
                                    f"allowed but gone: {sorted(set(DEFERRED) - found)}")


def test_each_function_says_why_its_first_import_waits():
    for module, function, node in function_level_imports():
        first = min((n for n in ast.walk(function) if isinstance(n, (ast.Import, ast.ImportFrom))),
                    key=lambda n: n.lineno)
        if node is first:
            line = MODULES[module].read_text().splitlines()[node.lineno - 1]
            assert "# deferred:" in line, f"{module}:{node.lineno} ({function.name}): say why the import waits"


CLI_MODULES = [module for module in MODULES if module.startswith("textedit.cli")]


def test_every_command_checks_its_input_before_the_libraries_start():
    """A command body checks what it was given without torch (spec, paths, option values), then
    calls ``_start_libraries()`` (torch under the Ctrl-C guard), and only then imports what it
    computes with or calls a helper that does: nothing before that call imports, directly or
    through a helper of ``textedit/cli/`` that imports (found here by following the calls)."""
    trees = [ast.parse(MODULES[module].read_text()) for module in CLI_MODULES]
    functions = {node.name: node for tree in trees for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert len(functions) == sum(isinstance(n, ast.FunctionDef) for t in trees for n in t.body), "a name twice"

    def calls(node) -> set[str]:
        return {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}

    importing = {name for name, f in functions.items()
                 if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(f))} - {"_start_libraries"}
    while True:  # the helpers that call an importing helper import too
        more = {name for name, f in functions.items() if calls(f) & importing} - importing - {"_start_libraries"}
        if not more:
            break
        importing |= more
    commands = [f for f in functions.values() if any(
        isinstance(d, ast.Call) and getattr(d.func, "id", None) == "command" for d in f.decorator_list)]
    assert len(commands) >= 11
    for command in commands:
        before = []
        for statement in command.body:
            if "_start_libraries" in calls(statement):
                break
            before.append(statement)
        else:
            assert command.name == "fetch_model", f"{command.name} never calls _start_libraries()"
            assert all(target.startswith("textedit.fetch") for node in ast.walk(command)
                       if isinstance(node, ast.ImportFrom) for target in imported("textedit.cli.models", node))
            continue
        for statement in before:
            imports = [n for n in ast.walk(statement) if isinstance(n, (ast.Import, ast.ImportFrom))]
            assert not imports, f"{command.name}:{statement.lineno} imports before _start_libraries()"
            assert not calls(statement) & importing, \
                f"{command.name}:{statement.lineno} calls {sorted(calls(statement) & importing)} before _start_libraries()"
