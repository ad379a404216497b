"""The import layers of pyproject.toml's import-linter contracts hold, and would catch a break.

(The application layer, CLI, daily job and demo, is the only code that imports the ML code;
the ML code imports neither the application nor the data generator.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run(
        [LINT_IMPORTS, str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_layers_hold() -> None:
    proc = _lint(REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_training_that_imports_the_generator_breaks_the_build(tmp_path) -> None:
    for package in ("features", "models_ml"):
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    task = tmp_path / "models_ml" / "churn.py"
    text = task.read_text()
    anchor = "from __future__ import annotations\n"
    assert anchor in text
    task.write_text(text.replace(anchor, anchor + "from features.generate import risk\n", 1))
    proc = _lint(tmp_path)
    assert proc.returncode != 0
    assert (
        "The ML code imports neither the application layer nor the data generator BROKEN"
        in proc.stdout
    )
    assert "models_ml.churn -> features.generate.risk" in proc.stdout
