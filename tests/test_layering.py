"""The import layers of docs/architecture.md, checked on the AST of every module.

``mls`` is a stack: a module may import only modules listed *before* it in ``MLS_LAYERS``
(``mls/__init__.py`` only re-exports; ``mls/vectors/`` is a tool on top of everything). ``mls``
never imports I/O or the node. In ``quicnproto``, the transport knows nothing of node or
client, the sans-I/O modules import no trio, and node and client do not import each other.
Inside the ``transport.quic`` package, only ``_aioquic`` reaches aioquic's private state (by
convention, not checked here), and the modules import each other without a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MLS_LAYERS = [
    "errors",
    "codec",
    "tree_math",
    "crypto.primitives",
    "crypto.hpke",
    "crypto.ciphersuite",
    "crypto.labels",
    "crypto",
    "credentials",
    "extensions",
    "group_context",
    "leaf_node",
    "key_package",
    "tree_nodes",
    "tree_hashes",
    "ratchet_tree",
    "tree_validation",
    "treekem",
    "psk_id",
    "psk",
    "key_schedule",
    "secret_tree",
    "messages",
    "framing",
    "transcript",
    "message_protection",
    "group.config",
    "group.state",
    "group.proposals",
    "group.epoch",
    "group.welcome",
    "group.staged_commit",
    "group.commit",
    "group.external",
    "group.results",
    "group.process",
    "group.group",
    "group.member",
    "group",
]
"""Bottom first. A new module must be placed here, which is the point."""

MLS_FORBIDDEN = {
    "quicnproto",
    "trio",
    "aioquic",
    "capnp",
    "sqlite3",
    "socket",
    "asyncio",
    "typer",
    "rich",
}


def _module_name(path: Path, package: str) -> str:
    rel = path.relative_to(ROOT / package).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _imports(path: Path, package: str) -> list[str]:
    """Absolute dotted names imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path, package).split(".") if _module_name(path, package) else []
    is_pkg = path.name == "__init__.py"
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join([package, *base])
                mod = f"{prefix}.{node.module}" if node.module else prefix
                if node.module is None:
                    out.extend(f"{prefix}.{a.name}" for a in node.names)
                    continue
            else:
                mod = node.module or ""
            out.append(mod)
            # ``from mls import codec`` names a module too
            out.extend(f"{mod}.{a.name}" for a in node.names)
    return out


def _rank(name: str) -> int | None:
    """Layer of an mls submodule name (``crypto.labels``); None when not a module of ours."""
    while name:
        if name in MLS_LAYERS:
            return MLS_LAYERS.index(name)
        name = name.rpartition(".")[0]
    return None


def _mls_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "mls").rglob("*.py"))


def test_mls_modules_are_all_placed_in_a_layer() -> None:
    for path in _mls_modules():
        name = _module_name(path, "mls")
        if name == "" or name.startswith("vectors"):
            continue
        assert _rank(name) is not None, (
            f"mls/{path.relative_to(ROOT / 'mls')} is missing from MLS_LAYERS"
        )


@pytest.mark.parametrize("path", _mls_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_mls_imports_only_lower_layers(path: Path) -> None:
    name = _module_name(path, "mls")
    for imported in _imports(path, "mls"):
        top = imported.split(".")[0]
        assert top not in MLS_FORBIDDEN, f"{path.name} imports {imported}"
        if name == "" or name.startswith("vectors") or top != "mls":
            continue
        sub = imported[len("mls.") :] if imported.startswith("mls.") else ""
        if not sub or sub.startswith("vectors"):
            assert not sub.startswith("vectors"), f"{name} imports the vector runners"
            continue
        target = _rank(sub)
        if target is None:
            continue  # a name imported from a module, already checked as the module
        mine = _rank(name)
        assert mine is not None
        if name.startswith("crypto") and not sub.startswith("crypto"):
            assert target < MLS_LAYERS.index("crypto.primitives"), (
                f"mls.{name} (crypto) imports protocol module mls.{sub}"
            )
        assert target <= mine, f"mls.{name} imports mls.{sub}, which sits above it"
        assert not (target == mine and sub != name and not name.startswith("crypto")), (
            f"mls.{name} imports mls.{sub} at the same layer"
        )


def _quicnproto_modules() -> list[Path]:
    return sorted((ROOT / "quicnproto").rglob("*.py"))


@pytest.mark.parametrize("path", _quicnproto_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_quicnproto_layers(path: Path) -> None:
    name = _module_name(path, "quicnproto")
    imported = _imports(path, "quicnproto")
    if name.startswith("transport"):
        bad = [
            m
            for m in imported
            if m.startswith(("quicnproto.node", "quicnproto.client", "quicnproto.cli"))
        ]
        assert not bad, f"transport module {name} imports {bad}"
    if name in ("rpc", "wire", "rpc_messages"):
        assert not [m for m in imported if m.split(".")[0] in ("trio", "aioquic")], (
            f"{name} must stay sans-I/O"
        )
    if name.startswith("node"):
        assert not [m for m in imported if m.startswith("quicnproto.client")], (
            f"{name} imports the client"
        )
    if name.startswith("client"):
        assert not [m for m in imported if m.startswith("quicnproto.node")], (
            f"{name} imports the node"
        )


STORE_LAYERS = [
    "types",
    "schema",
    "quarantine",
    "queues",
    "key_packages",
    "retention",
    "database",
    "group_commit",
    "sqlite_store",
]
"""``quicnproto/node/store/``, bottom first: a module imports only modules listed before it."""


def _store_modules() -> list[Path]:
    return sorted((ROOT / "quicnproto" / "node" / "store").glob("*.py"))


def test_store_modules_are_all_placed_in_a_layer() -> None:
    found = {p.stem for p in _store_modules()} - {"__init__"}
    assert found == set(STORE_LAYERS)


@pytest.mark.parametrize("path", _store_modules(), ids=lambda p: p.name)
def test_store_imports_only_lower_store_modules_and_no_handlers(path: Path) -> None:
    # Importing a lower module only rules out cycles inside the package; the store never
    # reaches up into the node's handlers, the server or the client.
    imported = _imports(path, "quicnproto")
    forbidden = (
        "quicnproto.node.server",
        "quicnproto.node.auth_service",
        "quicnproto.node.delivery_service",
        "quicnproto.client",
        "quicnproto.cli",
    )
    assert not [m for m in imported if m.startswith(forbidden)], f"{path.name} imports {imported}"
    if path.stem == "__init__":
        return
    rank = STORE_LAYERS.index(path.stem)
    prefix = "quicnproto.node.store."
    for module in imported:
        if module.startswith(prefix):
            target = module[len(prefix) :].split(".")[0]
            assert target in STORE_LAYERS[:rank], f"store.{path.stem} imports store.{target}"


def _transport_quic_graph() -> dict[str, set[str]]:
    """Imports between the modules of ``quicnproto.transport.quic`` (package ``__init__`` aside:
    it only re-exports)."""
    package = ROOT / "quicnproto" / "transport" / "quic"
    names = {
        f"quicnproto.transport.quic.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"
    }
    graph: dict[str, set[str]] = {}
    for name in names:
        path = package / f"{name.rpartition('.')[2]}.py"
        graph[name] = {m for m in _imports(path, "quicnproto") if m in names and m != name}
    return graph


def test_transport_quic_is_a_package_of_several_modules() -> None:
    graph = _transport_quic_graph()
    assert {"quicnproto.transport.quic._aioquic", "quicnproto.transport.quic.server"} <= set(graph)


def test_transport_quic_has_no_import_cycle() -> None:
    graph = _transport_quic_graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name) :] + [name]
            raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
