"""`distill landscape`: the typer command, registered on a bare app."""

import json

import numpy as np
import pytest
import typer
from scipy import stats
from typer.testing import CliRunner

from distill.cli.landscape import landscape


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    app.command()(landscape)
    return app


def invoke(app, *args):
    return CliRunner().invoke(app, list(args))


def test_prints_table_and_writes_figure_and_json(app, tmp_path):
    out = tmp_path / "landscape.png"
    result = invoke(
        app, "--dist", "skew-normal", "--skew", "4", "--loss", "squared", "--loss", "absolute",
        "--loss", "pinball:0.1,0.5,0.9", "--loss", "huber:1.0", "--huber-beta", "--nodes", "2001",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "pinball(tau=[0.1, 0.5, 0.9])" in result.output
    assert "prob mean" in result.output and "Huber β" in result.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(out.with_suffix(".json").read_text())
    rows = {row["loss"]: row["logit"] for row in data["minimisers"]}
    assert rows["squared"] == pytest.approx(stats.skewnorm(4).mean(), abs=2e-3)
    assert rows["absolute"] == pytest.approx(stats.skewnorm(4).median(), abs=2e-3)
    assert data["huber_beta_for_prob_mean"] > 0


def test_empirical_sample_from_npy(app, tmp_path):
    np.save(tmp_path / "scores.npy", np.arange(101, dtype=np.float64))
    out = tmp_path / "e.png"
    result = invoke(
        app, "--dist", "empirical", "--sample", str(tmp_path / "scores.npy"),
        "--loss", "squared", "--domain", "prob", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.with_suffix(".json").read_text())["domain"] == "prob"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dist", "normal", "--skew", "1"], "--skew does not apply to --dist normal"),
        (["--dist", "skew-normal"], "--dist skew-normal needs --skew"),
        (["--dist", "normal", "--scale", "-1"], "`scale` must be in (0, inf), got -1"),
        (["--loss", "nope"], "`penalty` must be one of"),
        (["--dist", "empirical"], "use --sample PATH together with --dist empirical"),
        (["--dist", "empirical", "--sample", "missing.npy"], "No such file"),
    ],
)
def test_bad_input_exits_2_with_one_line(app, tmp_path, args, message):
    result = invoke(app, *args, "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
