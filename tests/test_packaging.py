"""The core install (torch, numpy, safetensors) works alone; extras load only when used."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

import distill
from distill._extras import EXTRAS, require

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
EXTRA_MODULES = sorted({m for modules in EXTRAS.values() for m in modules})

# Hide every extra's library from a child interpreter, as if it were not installed.
BLOCK = f"import sys\nfor _m in {EXTRA_MODULES!r}: sys.modules[_m] = None\n"

# A loss, `fit` and the module teacher on the core alone; prints the extras that got imported.
CORE_USE = textwrap.dedent(
    """
    import sys, torch, distill
    from distill import MLP, Dataset, Objective, TrainOptions, fit, kd_loss
    from distill.train import KDTerm, LabelsTerm

    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    teacher = distill.ModuleTeacher(MLP(4, (8,), 3))
    loss = kd_loss(torch.randn(64, 3, requires_grad=True), torch.randn(64, 3), y)
    loss.backward()
    result = fit(
        MLP(4, (8,), 3),
        Dataset(x, y),
        objective=Objective([LabelsTerm("ce"), KDTerm(temperature=2.0)]),
        options=TrainOptions(max_steps=3, batch_size=16, device="cpu", progress=True),
        teacher=teacher,
    )
    assert result.steps == 3, result.steps
    loaded = [m for m in EXTRA if sys.modules.get(m) is not None]
    print("LOADED", loaded)
    """
)


def _run(code: str, *, python: str = sys.executable, env_path: bool = True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env_path:
        env["PYTHONPATH"] = str(SRC)
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_import_distill_loads_no_extra_and_trains_without_them():
    result = _run(BLOCK + f"EXTRA = {EXTRA_MODULES!r}\n" + CORE_USE)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout


@pytest.mark.parametrize(
    ("use", "extra"),
    [
        ("distill.data.read_table", "data"),
        ("distill.load_config", "cli"),
        ("distill.run_experiment", "cli,data"),
        ("distill.CachedScores('x', None, teacher='t')", "data"),
        ("distill.load_builtin('digits')", "data"),
        ("distill.export.OnnxModel('m.onnx')", "export"),
    ],
)
def test_a_missing_extra_names_its_pip_install_line(use, extra):
    code = BLOCK + f"import distill, distill.data, distill.export\n{use}\n"
    result = _run(code)
    assert result.returncode == 1
    pattern = rf"ModuleNotFoundError: this feature needs `[a-z-]+`.*'distill\[{extra}\]'"
    assert re.search(pattern, result.stderr), result.stderr


def test_the_command_without_the_cli_extra_prints_the_install_line():
    result = _run(
        BLOCK + "import sys; sys.argv = ['distill', '--help']\nimport runpy\n"
        "runpy.run_module('distill', run_name='__main__')\n"
    )
    assert result.returncode == 2
    assert "pip install 'distill[cli]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_extras_cover_the_libraries_the_code_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    names = {
        extra: {re.split(r"[<>=;\[ ]", spec)[0].lower() for spec in optional[extra]}
        for extra in EXTRAS
    }
    aliases = {"sklearn": "scikit-learn", "tomli_w": "tomli-w"}
    for extra, modules in EXTRAS.items():
        assert {aliases.get(m, m) for m in modules} <= names[extra], extra
    core = {re.split(r"[<>=;\[ ]", spec)[0].lower() for spec in project["dependencies"]}
    assert core == {"torch", "numpy", "safetensors"}
    assert "distill[all]" in optional["dev"]
    assert set(optional["all"][0].split("[")[1].rstrip("]").split(",")) >= set(EXTRAS)


def test_version_is_written_once_and_packaging_files_ship():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'attr = "distill.__version__"' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", distill.__version__)
    assert f"## {distill.__version__}" in (ROOT / "CHANGELOG.md").read_text()
    assert (SRC / "distill" / "py.typed").exists()
    assert "Apache License" in (ROOT / "LICENSE").read_text()


def _readme_own_loop_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Distillation in your own training loop", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_a_fresh_venv_with_the_core_alone_runs_a_loss_fit_and_the_readme_loop(tmp_path):
    """Builds a venv: torch + numpy, then ``pip install .``; ~1–2 min (installs torch)."""
    venv = tmp_path / "core"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, "torch==2.13.0", "numpy"], check=True)
    subprocess.run([*pip, str(ROOT)], check=True)
    listing = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    installed = {p["name"].lower() for p in json.loads(listing.stdout)}
    assert not installed & {"pyarrow", "scipy", "scikit-learn", "pydantic", "typer", "onnx"}
    result = _run(f"EXTRA = {EXTRA_MODULES!r}\n" + CORE_USE, python=python, env_path=False)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
    readme = _run(_readme_own_loop_example(), python=python, env_path=False)
    assert readme.returncode == 0, readme.stderr


def test_require_imports_or_names_the_extra():
    import json as json_module

    assert require("json", extra="cli") is json_module
    with pytest.raises(ModuleNotFoundError, match=r"needs `no_such_lib`.*'distill\[data\]'"):
        require("no_such_lib.sub", extra="data")


def test_lazy_names_load_on_first_use_and_unknown_names_raise():
    assert distill.RunConfig.__name__ == "RunConfig"
    assert "RunConfig" in dir(distill)
    with pytest.raises(AttributeError, match="module 'distill' has no attribute 'nope'"):
        _ = distill.nope
