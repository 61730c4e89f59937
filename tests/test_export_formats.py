"""Every non-ONNX format for a tiny MLP and Wide&Deep: write, reload, compare to the original."""

import json

import pytest
import torch

from distill import models
from distill.export import (
    FORMATS,
    CompressedModel,
    Int8Linear,
    atomic_directory,
    compress,
    export_model,
    read_export,
    serving_module,
)
from distill.models import MLP, WideAndDeep, ctr_joint_model
from distill.ranking.heads import with_quantile_heads

# Stated tolerances (relative to the largest output magnitude on the sample):
# fp16 has an 11-bit significand (unit roundoff 2^-11 ≈ 5e-4 per op): 1e-2 leaves room for the
# accumulation over a few layers; bf16 has 8 bits (2^-8 ≈ 4e-3 per op): 5e-2.
# int8: weights per channel and activations per batch at ~1/127 of their range each, two
# roundings per layer over ~3 layers: 5e-2 of the output scale.
RELATIVE_TOLERANCE = {"safetensors": 0.0, "fp16": 1e-2, "bf16": 5e-2, "int8": 5e-2}


def _mlp() -> MLP:
    torch.manual_seed(0)
    return MLP(12, (32, 16), 1).eval()


def _wide_and_deep() -> WideAndDeep:
    torch.manual_seed(0)
    model = WideAndDeep(60, 4, embed_dim=6, hidden=(32, 16)).eval()
    with torch.no_grad():  # give the padding-free embedding rows some scale
        model.bottom.embedding.weight.mul_(0.5)
    return model


def _inputs(model):
    generator = torch.Generator().manual_seed(1)
    if isinstance(model, WideAndDeep):
        ids = torch.randint(0, 60, (300, 4), generator=generator)
        return ids, torch.rand(300, 4, generator=generator)
    return (torch.randn(300, 12, generator=generator),)


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float(((got - expected).abs().max() / expected.abs().max()).detach())


@pytest.mark.parametrize("make", [_mlp, _wide_and_deep], ids=["mlp", "wide_and_deep"])
@pytest.mark.parametrize("fmt", ["safetensors", "fp16", "bf16", "int8"])
def test_export_reload_and_compare(tmp_path, make, fmt):
    model = make()
    inputs = _inputs(model)
    with torch.no_grad():
        expected = model(*inputs)
    result = export_model(model, tmp_path / fmt, format=fmt)
    reloaded = models.load(tmp_path / fmt)  # the plain model loader rebuilds every format
    with torch.no_grad():
        got = reloaded(*inputs)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert _relative_error(got, expected) <= RELATIVE_TOLERANCE[fmt]
    assert result.weights_bytes == (tmp_path / fmt / "model.safetensors").stat().st_size
    assert json.loads((tmp_path / fmt / "export.json").read_text())["format"] == fmt


def test_half_precision_exports_keep_half_weights_and_halve_the_file(tmp_path):
    model = _mlp()
    plain = export_model(model, tmp_path / "plain", format="safetensors")
    for fmt, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        result = export_model(model, tmp_path / fmt, format=fmt)
        assert {p.dtype for p in result.model.parameters()} == {dtype}
        assert result.weights_bytes < 0.6 * plain.weights_bytes


def test_int8_export_stores_int8_and_is_about_four_times_smaller(tmp_path):
    torch.manual_seed(0)
    model = MLP(64, (128, 64), 1)
    plain = export_model(model, tmp_path / "plain", format="safetensors")
    result = export_model(model, tmp_path / "int8", format="int8")
    layers = [m for m in result.model.modules() if isinstance(m, Int8Linear)]
    assert len(layers) == 3 and all(m.weight_int8.dtype == torch.int8 for m in layers)
    assert result.weights_bytes < 0.3 * plain.weights_bytes


def test_int8_ctr_export_quantises_the_embedding_table(tmp_path):
    torch.manual_seed(0)
    model = WideAndDeep(5000, 4, embed_dim=16, hidden=(32,))
    plain = export_model(model, tmp_path / "plain", format="safetensors")
    result = export_model(model, tmp_path / "int8", format="int8")
    assert type(result.model.model.bottom.embedding).__name__ == "Int8Embedding"
    assert result.weights_bytes < 0.45 * plain.weights_bytes  # the (5000, 1) wide table stays


def test_low_rank_export_full_rank_is_exact_and_energy_is_bounded(tmp_path):
    model = _mlp()
    x = _inputs(model)
    full = export_model(  # energy 1.0 keeps every singular value: rank min(O, D)
        model, tmp_path / "full", format="low-rank", rank=1.0, layers=["body.0.0", "body.1.0"]
    )
    assert full.details["ranks"] == {"body.0.0": 12, "body.1.0": 16}
    assert torch.allclose(full.model(*x), model(*x), atol=1e-5)
    with torch.no_grad():  # trained weights have decaying spectra; make this one like that
        weight = model.body[0][0].weight
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        weight.copy_(u * (s * 0.5 ** torch.arange(12.0)) @ vh)
    energy = export_model(model, tmp_path / "energy", format="low-rank", rank=0.9)
    assert energy.details["ranks"]["body.0.0"] <= 3
    assert _relative_error(energy.model(*x).detach(), model(*x).detach()) < 0.3


def test_low_rank_export_with_recovery_gets_closer(tmp_path):
    model = _mlp()
    (x,) = _inputs(model)
    plain = compress(model, "low-rank", rank=2)
    recovered = compress(model, "low-rank", rank=2, recover_inputs=x, recover_steps=150)
    with torch.no_grad():
        target = model(x)
        before = float(((plain(x) - target) ** 2).mean())
        after = float(((recovered(x) - target) ** 2).mean())
    assert after < before
    with pytest.raises(ValueError, match="`recover_inputs` must be given"):
        compress(model, "low-rank", rank=2, recover_steps=5)


def test_exports_chain_low_rank_then_int8_or_fp16(tmp_path):
    torch.manual_seed(0)
    model = MLP(64, (64, 64), 10)
    factorised = export_model(model, tmp_path / "lr", format="low-rank", rank=8)
    x = torch.randn(32, 64)
    expected = factorised.model(x)
    for fmt, tolerance in (("int8", 5e-2), ("fp16", 1e-2)):
        export_model(factorised.model, tmp_path / f"lr-{fmt}", format=fmt)
        chained = models.load(tmp_path / f"lr-{fmt}")
        assert _relative_error(chained(x), expected) <= tolerance
    both = read_export(tmp_path / "lr-int8")
    assert both.weights_bytes < 0.5 * factorised.weights_bytes
    with pytest.raises(ValueError, match="`model` already has int8 layers; fp16 applies to float"):
        compress(both.model, "fp16")


def test_joint_model_exports_only_the_student(tmp_path):
    torch.manual_seed(0)
    joint = ctr_joint_model(40, 3, student_hidden=(8,), teacher_hidden=(64, 32))
    ids = torch.randint(0, 40, (20, 3))
    result = export_model(joint, tmp_path / "student", format="safetensors")
    _, student_logit = joint(ids)
    assert torch.allclose(result.model(ids), student_logit)
    assert not any("teacher" in key for key in result.model.state_dict())
    assert type(serving_module(joint)).__name__ == "StackedModel"
    int8 = export_model(joint, tmp_path / "int8", format="int8")
    assert int8.details["int8_layers"] == [
        "bottom.embedding",
        "tower.deep.body.0.0",
        "tower.deep.head",
    ]  # the (V, 1) wide table stays float32


def test_quantile_heads_are_stripped(tmp_path):
    model = _mlp()
    wrapped = with_quantile_heads(model, [0.25, 0.5, 0.75], "linear")
    result = export_model(wrapped, tmp_path / "out", format="safetensors")
    assert not any("heads" in key for key in result.model.state_dict())
    x = torch.randn(4, 12)
    assert torch.equal(result.model(x), model(x))


def test_compressed_model_spec_rebuilds_the_structure():
    model = _mlp()
    compressed = compress(model, "int8")
    assert isinstance(compressed, CompressedModel)
    rebuilt = models.build(compressed.spec())
    assert list(rebuilt.state_dict()) == list(compressed.state_dict())
    assert json.loads(json.dumps(compressed.spec())) == compressed.spec()


def test_unknown_format_and_onnx_without_example(tmp_path):
    with pytest.raises(ValueError, match="`format` must be one of 'safetensors', 'fp16'"):
        export_model(_mlp(), tmp_path / "x", format="tflite")
    with pytest.raises(ValueError, match="`example_input` must be given for the 'onnx' format"):
        export_model(_mlp(), tmp_path / "x", format="onnx")
    assert not (tmp_path / "x").exists()
    assert FORMATS == ("safetensors", "fp16", "bf16", "int8", "low-rank", "onnx")


def test_a_model_without_spec_is_refused(tmp_path):
    plain = torch.nn.Sequential(torch.nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"`base` \(Sequential\) has no spec\(\)"):
        export_model(plain, tmp_path / "x", format="int8")
    assert not (tmp_path / "x").exists()


def test_existing_output_needs_force_and_is_replaced_whole(tmp_path):
    out = tmp_path / "out"
    export_model(_mlp(), out, format="fp16")
    with pytest.raises(FileExistsError, match="already exists; pass force=True"):
        export_model(_mlp(), out, format="int8")
    assert read_export(out).format == "fp16"
    export_model(_mlp(), out, format="int8", force=True)
    assert read_export(out).format == "int8"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp dirs left


def test_failed_export_leaves_nothing_behind(tmp_path):
    out = tmp_path / "out"
    export_model(_mlp(), out, format="safetensors")
    with pytest.raises(ValueError, match="`rank` 99 is too large"):
        export_model(_mlp(), out, format="low-rank", rank=99, force=True)
    assert read_export(out).format == "safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_refuses_to_replace_a_directory_that_is_not_an_export(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    refused = pytest.raises(FileExistsError, match="refusing to replace .*not an earlier export")
    with refused, atomic_directory(precious, force=True):
        pass
    assert (precious / "notes.txt").read_text() == "keep me"
