"""The distribution ships what the code needs: every package, and the Cap'n Proto schemas.

``pyproject.toml`` lists the packages by hand (so that the top-level ``schemas/`` directory can
ship as ``quicnproto/schemas``); these tests keep that list in step with the source tree, and
import a built wheel from outside the checkout to prove nothing is read from the source tree.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_of_the_source_tree_is_listed() -> None:
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("mls", "quicnproto")
        for init in (ROOT / top).rglob("__init__.py")
    }
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert listed == on_disk | {"quicnproto.schemas"}
    assert _pyproject()["tool"]["setuptools"]["package-dir"] == {"quicnproto.schemas": "schemas"}


def test_a_built_wheel_imports_with_its_own_schemas(tmp_path: Path) -> None:
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(ROOT), "--no-deps", "-w", str(wheels)], check=True)
    (wheel,) = wheels.glob("quicnproto-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    probe = (
        "import mls.key_package, quicnproto.wire as w, quicnproto.node.server;"
        "print(w.SCHEMA_DIR);"
        "print(w.decode_request(w.encode_request(1, w.Ping())))"
    )
    # Run from outside the checkout, with the wheel's files ahead of everything else on the
    # path, so neither the source tree nor the editable install can answer the imports.
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    schema_dir, decoded = result.stdout.splitlines()
    assert Path(schema_dir) == site / "quicnproto" / "schemas"
    assert decoded == "(1, Ping())"
