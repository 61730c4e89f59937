import sys
from pathlib import Path

import pytest
import torch

from distill.train import DistributedContext, all_reduce_mean, fit, load_checkpoint, read_metrics
from distill.train.batches import epoch_batches, shard_batch
from launch import launch

WORKER = Path(__file__).with_name("train_worker.py")


def test_shard_keeps_groups_whole_and_deals_them_round_robin():
    groups = torch.tensor([7, 7, 3, 9, 9, 9, 3, 1])
    index = torch.tensor([0, 1, 3, 4, 5, 2, 6, 7])  # group order of first appearance: 7, 9, 3, 1
    shards = [
        shard_batch(index, groups, DistributedContext(rank=r, world_size=2)).tolist()
        for r in range(2)
    ]
    assert shards == [[0, 1, 2, 6], [3, 4, 5, 7]]  # rank 0: groups 7 and 3; rank 1: 9 and 1
    rows = shard_batch(torch.arange(7), None, DistributedContext(rank=2, world_size=3))
    assert rows.tolist() == [5, 6]


def test_epoch_batches_split_every_global_batch_across_ranks():
    from train_worker import grouped_setup

    _, data, *_ = grouped_setup()
    kwargs = {"batch_size": 32, "groups_per_batch": 4, "seed": 0, "epoch": 1}
    single = epoch_batches(data, context=DistributedContext(), **kwargs)
    ranks = [
        epoch_batches(data, context=DistributedContext(rank=r, world_size=2), **kwargs)
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 8
    for whole, first, second in zip(single, *ranks, strict=True):
        assert sorted(torch.cat([first, second]).tolist()) == sorted(whole.tolist())
        assert not set(data.groups[first].tolist()) & set(data.groups[second].tolist())


def test_all_reduce_mean_is_identity_in_one_process():
    assert all_reduce_mean({"loss": 1.5, "auc": 0.5}, DistributedContext()) == {
        "loss": 1.5,
        "auc": 0.5,
    }


def test_torchrun_two_processes_match_one_process(tmp_path):
    from train_worker import grouped_setup

    ddp_dir = tmp_path / "ddp"
    ddp_dir.mkdir()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(WORKER),
        "ddp",
        str(ddp_dir),
    ]
    launch(command)

    model, train, valid, objective, options = grouped_setup()
    single = fit(
        model, train, objective=objective, options=options, valid=valid, run_dir=tmp_path / "single"
    )
    distributed = torch.load(ddp_dir / "final.pt", weights_only=True)
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(distributed[name], value, rtol=1e-4, atol=1e-5)

    ranks = torch.load(ddp_dir / "ranks.pt", weights_only=True)
    assert ranks == {"mean_rank": 0.5, "world_size": 2}  # values are averaged over ranks
    logged = read_metrics(ddp_dir / "metrics.jsonl")
    reference = read_metrics(single.history_path)
    assert [(r["step"], r["split"]) for r in logged] == [
        (r["step"], r["split"]) for r in reference
    ]  # rank 0 alone writes: one line per step, not two
    for ours, theirs in zip(logged, reference, strict=True):
        key = "loss" if ours["split"] == "train" else "auc"
        assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-5)
    last = load_checkpoint(ddp_dir / "checkpoints" / "student" / "last.pt")
    assert last["step"] == 12 and len(last["rng"]) == 2  # one RNG state per rank
