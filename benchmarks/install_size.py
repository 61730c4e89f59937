"""Size of the core install: a fresh venv with torch + numpy, then the same after ``pip install .``.

Target: the core (``pip install distill`` without extras) adds at most 50 MB to a venv that
holds only torch and numpy. torch is installed once, pinned by ``constraints.txt``; the second
step must not download or replace it. Run: ``python -m benchmarks.install_size`` (a few
minutes: it installs torch; ``--quick`` skips torch and installs the package alone).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._common import ROOT, markdown_table, parse_args, publish, write_results

NAME = "install_size"
TARGET_MB = 50.0


def _megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _pip(python: Path, *packages: str) -> None:
    command = [str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    subprocess.run([*command, *packages], check=True)


def measure(folder: Path, *, with_torch: bool) -> dict[str, object]:
    """Build the venv in ``folder``; the sizes before and after installing distill's core."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    if with_torch:
        _pip(python, "torch==2.13.0", "numpy")
    before = _megabytes(folder)
    _pip(python, *([] if with_torch else ["--no-deps"]), str(ROOT))
    after = _megabytes(folder)
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True
    )
    packages = sorted(p["name"] for p in json.loads(listing.stdout))
    return {
        "before_mb": before,
        "after_mb": after,
        "added_mb": after - before,
        "packages": packages,
    }


def main(argv=None) -> None:
    """Measure, write the results and the section."""
    args = parse_args(NAME, argv, seeds=1)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp) / "core", with_torch=not args.quick)
    write_results(NAME, args, {"target_mb": TARGET_MB, **result})
    verdict = "met" if result["added_mb"] <= TARGET_MB else "missed"
    rows = [
        ["venv with torch + numpy", f"{result['before_mb']:.0f} MB"],
        ["the same after `pip install .` (core)", f"{result['after_mb']:.0f} MB"],
        ["added by the core", f"{result['added_mb']:.1f} MB ({verdict}: target ≤ 50 MB)"],
    ]
    added = sorted(set(result["packages"]) - {"pip", "setuptools"})
    body = (
        "Sizes on disk of a fresh venv (file bytes). Packages after the core install: "
        + ", ".join(added)
        + ".\n\n"
        + markdown_table(["venv", "size"], rows)
    )
    publish("Core install size (`benchmarks/install_size.py`)", body, args)


if __name__ == "__main__":
    main()
