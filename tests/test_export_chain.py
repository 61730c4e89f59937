"""The compression chain: each step from the previous one, its files and its table rows."""

import json
import os
import struct

import pytest
import torch
import typer
from typer.testing import CliRunner

from distill import models
from distill.cli.export import export
from distill.data import synthetic_text
from distill.export import ChainSettings, chain_table, read_export, run_chain
from distill.export.sources import ExportSource, chain_source
from distill.models import MLP, NextTokenLM

app = typer.Typer()
app.command()(export)
app.command("other")(lambda: None)
runner = CliRunner()


@pytest.fixture
def lm():
    torch.manual_seed(0)
    return NextTokenLM(48, 3, 48, embedding_dim=8, hidden=(32,)).eval()


@pytest.fixture
def data():
    return synthetic_text(400, vocab_size=48, context=3, seed=0)


def _data_bytes(path) -> tuple[int, dict]:
    """The tensor bytes of a safetensors file, read by hand: u64 header length, JSON header."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return os.path.getsize(path) - 8 - length, header


def _accuracy(model, data):
    with torch.inference_mode():
        return float((model(data.features).argmax(1) == data.labels).double().mean())


def test_each_step_starts_from_the_previous_one(tmp_path, lm, data):
    settings = ChainSettings(share_rank=6, rank=4, recover_steps=5, recover_inputs=data.features)
    written = run_chain(lm, ["share", "low-rank", "fp16"], tmp_path, settings=settings)
    assert list(written) == ["original", "share", "low-rank", "fp16"]
    loaded = {step: read_export(path) for step, path in written.items()}
    kwargs = loaded["fp16"].model.spec()["kwargs"]
    assert kwargs["shared"] == {"embedding": "embedding", "output": "head", "rank": 6}
    assert kwargs["ranks"] == {"body.0": 4, "project": 4} and kwargs["dtype"] == "float16"
    assert loaded["low-rank"].model.spec()["kwargs"]["shared"]["rank"] == 6
    assert loaded["fp16"].details["chain"] == ["share", "low-rank", "fp16"]
    x = data.features[:64]
    torch.testing.assert_close(loaded["original"].model(x), lm(x))
    # fp16 rounds the low-rank step's weights, nothing else
    before, after = loaded["low-rank"].model(x), loaded["fp16"].model(x)
    assert (after - before).abs().max() <= 2e-2 * before.abs().max()
    # the fp16 file holds half the tensor bytes of the float32 one, tensor by tensor
    float_bytes, float_header = _data_bytes(written["low-rank"] / "model.safetensors")
    half_bytes, half_header = _data_bytes(written["fp16"] / "model.safetensors")
    assert half_bytes * 2 == float_bytes
    assert {k: v["dtype"] for k, v in float_header.items()} == dict.fromkeys(float_header, "F32")
    assert {k: v["dtype"] for k, v in half_header.items()} == dict.fromkeys(half_header, "F16")


def test_table_sizes_are_the_files_and_changes_are_against_the_previous_step(tmp_path, lm, data):
    lm.train()
    written = run_chain(lm, ["share", "low-rank", "int8"], tmp_path, settings=ChainSettings(6, 4))
    assert lm.training and type(lm.head) is torch.nn.Linear  # the input model is left alone
    lm.eval()
    rows = chain_table(
        written,
        example_input=data.features[:8],
        evaluate=lambda predict: float(
            (predict(data.features).argmax(1) == data.labels).double().mean()
        ),
        repeats=1,
    )
    assert [row.step for row in rows] == ["original", "share", "low-rank", "int8"]
    sizes = [os.path.getsize(path / "model.safetensors") for path in written.values()]
    assert [row.bytes for row in rows] == sizes
    accuracies = [_accuracy(read_export(path).model, data) for path in written.values()]
    assert [row.metric for row in rows] == pytest.approx(accuracies)
    assert rows[0].metric_change is None
    for previous, row, size_before, size in zip(rows, rows[1:], sizes, sizes[1:], strict=False):
        assert row.metric_change == pytest.approx(row.metric - previous.metric)
        assert row.smaller_than_previous == pytest.approx(size_before / size)
        assert row.smaller_than_original == pytest.approx(sizes[0] / size)
    assert rows[1].params == models.count_parameters(lm) - 2 * 48 * 8 + 48 * 6 + 2 * 6 * 8
    assert "share rank 6" in rows[1].settings and "body.0 r=4" in rows[2].settings


@pytest.mark.parametrize(
    ("steps", "settings", "message"),
    [
        (["share", "zip"], {}, r"`steps` entry 'zip' is not a chain step"),
        (["low-rank", "share"], {}, r"must run share, then low-rank, .* got low-rank,share"),
        (["fp16", "int8"], {}, r"each at most once; got fp16,int8"),
        (["fp16", "low-rank"], {}, r"got fp16,low-rank"),
        ([], {}, r"`steps` must name at least one step"),
        (["share"], {"share_rank": 17}, r"`share_rank` must be in \[1, 16\] .*, got 17"),
        (["share"], {"share_rank": 0.0}, r"`share_rank` must be an int rank or an energy"),
        (
            ["share", "fp16"],
            {"share_rank": 12},
            r"`share_rank` 12 gives rank 12: V·r \+ 2·r·d = 768 weights, not fewer than the "
            r"2·V·d = 768 of embedding \+ head; ranks up to 11 make them smaller",
        ),
        (["share"], {"output": "project"}, r"`output` 'project': no layer of the same V and d"),
        (["low-rank"], {"rank": 0}, r"`rank` must be >= 1, got 0"),
        (["share"], {"recover_steps": 3}, r"`recover_inputs` must be given"),
    ],
)
def test_bad_chains_are_refused_before_anything_is_written(tmp_path, lm, steps, settings, message):
    with pytest.raises(ValueError, match=message):
        run_chain(lm, steps, tmp_path / "out", settings=ChainSettings(**settings))
    assert not (tmp_path / "out").exists()


def test_share_needs_an_embedding_output_pair(tmp_path):
    with pytest.raises(ValueError, match=r"no embedding/output pair in MLP"):
        run_chain(MLP(8, (16,), 3), ["share", "fp16"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    source = ExportSource(
        tmp_path, {"s": MLP(8, (16,), 3)}, example_inputs={"s": torch.randn(4, 8)}
    )
    with pytest.raises(ValueError, match=r"no embedding/output pair in MLP"):
        chain_source(source, tmp_path / "o", steps=["share"])
    assert not (tmp_path / "o").exists()


class _Mismatched(torch.nn.Module):
    """An embedding of 10 tokens and an output layer over 12 classes."""

    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 12)

    def forward(self, ids):
        return self.out(self.table(ids).mean(1))


def test_a_vocabulary_mismatch_is_refused_before_writing(tmp_path):
    settings = ChainSettings(share_rank=2, embedding="table", output="out")
    with pytest.raises(
        ValueError, match=r"V mismatch: `embedding` 'table' has V = 10 rows, `output` 'out' has 12"
    ):
        run_chain(_Mismatched(), ["share"], tmp_path / "out", settings=settings)
    with pytest.raises(ValueError, match=r"no embedding/output pair in _Mismatched"):
        run_chain(_Mismatched(), ["share"], tmp_path / "out")
    with pytest.raises(TypeError, match=r"`model` \(_Mismatched\) has no spec\(\)"):
        run_chain(_Mismatched(), ["fp16"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _tiny_run(tmp_path):
    run = tmp_path / "runs" / "kb"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(
        '[run]\nname = "kb"\ntrack = "classification"\nseed = 0\n'
        '[data]\nsource = "builtin"\nname = "synthetic_text"\nsplit = [0.6, 0.2, 0.2]\n'
        "options = { n_rows = 300, vocab_size = 32, context = 3 }\n"
        '[teacher.model]\nname = "NextTokenLM"\nkwargs = { embedding_dim = 16 }\n'
        '[student.model]\nname = "NextTokenLM"\nkwargs = { embedding_dim = 8, hidden = [16] }\n'
        '[[variants]]\nname = "kd"\n[variants.objective.kd]\ntemperature = 2.0\n'
    )
    torch.manual_seed(0)
    models.save(NextTokenLM(32, 3, 32, embedding_dim=16), run / "teacher")
    models.save(NextTokenLM(32, 3, 32, embedding_dim=8, hidden=(16,)), run / "students" / "kd")
    return run


def test_cli_chain_on_a_run(tmp_path):
    run, out = _tiny_run(tmp_path), tmp_path / "chain"
    args = ["export", str(run), "--chain", "share,low-rank,fp16", "--share-rank", "6"]
    args += ["--low-rank", "4", "--recover-steps", "3", "--recover-from", "teacher"]
    args += ["--recover-loss", "kd", "--repeats", "1", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "chain.json").read_text())
    assert document["metric"] == "accuracy"
    names = [row["name"] for row in document["rows"]]
    assert names == ["kd/original", "kd/share", "kd/low-rank", "kd/fp16"]
    for row in document["rows"]:
        step = row["name"].split("/")[1]
        assert row["bytes"] == os.path.getsize(out / "kd" / step / "model.safetensors")
        assert 0.0 <= row["metric"] <= 1.0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["recovery"]["from"] == "teacher" and manifest["recovery"]["loss"] == "kd"
    assert "kd/fp16" in result.output and (out / "chain.md").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--chain", "share,gzip"], "unknown step 'gzip'"),
        (["--chain", "share", "--format", "fp16"], "--format and --chain exclude each other"),
        (["--chain", "fp16", "--share-rank", "4"], "only applies to a --chain with share"),
        (["--chain", "fp16", "--low-rank", "4"], "only applies to a --chain with low-rank"),
        (["--chain", "fp16", "--recover-steps", "4"], "needs a factorisation step"),
        (["--share-rank", "4"], "only applies to a --chain with share"),
        (["--chain", "share", "--share-rank", "1.5"], "fraction in (0, 1], got 1.5"),
        (["--chain", "share", "--recover-loss", "mse"], "got 'mse'"),
    ],
)
def test_cli_chain_usage_errors(tmp_path, extra, message):
    run, out = _tiny_run(tmp_path), tmp_path / "chain"
    result = runner.invoke(app, ["export", str(run), *extra, "--out", str(out)])
    assert result.exit_code == 2 and message in " ".join(result.output.replace("│", " ").split())
    assert not out.exists()


@pytest.mark.parametrize(
    ("chain", "rank", "messages"),
    [
        ("share", "40", ["`share_rank` must be in [1, 16]", "got 40"]),
        ("share,fp16", "1.0", ["`share_rank` 1.0 gives rank 16:", "not fewer than the 2·V·d"]),
    ],
)
def test_cli_chain_rank_refused_before_writing(tmp_path, chain, rank, messages):
    """Out of range (checked first), or an energy whose rank does not shrink the pair."""
    run, out = _tiny_run(tmp_path), tmp_path / "chain"
    args = ["export", str(run), "--chain", chain, "--share-rank", rank, "--out", str(out)]
    result = runner.invoke(app, args)
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 1, text
    for message in messages:
        assert message in text, text
    assert not out.exists()


def test_benchmark_runs_quick(tmp_path):
    from benchmarks import compression_chain

    markdown = tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--seeds", "1", "--results-dir", str(tmp_path), "--markdown", str(markdown)]
    compression_chain.main(argv)
    document = json.loads((tmp_path / "compression_chain.json").read_text())
    steps = document["per_seed"][0]["recovered"]
    assert list(steps) == ["original", "share", "low-rank", "fp16"]
    assert steps["fp16"]["bytes"] < steps["low-rank"]["bytes"] < steps["original"]["bytes"]
    assert not markdown.exists()
