"""`torchrun --nproc-per-node 2` over streamed shards: each rank reads its own rows, every row
once per epoch across ranks, the same number of steps on both."""

import json
import os
import sys
from pathlib import Path

from launch import launch
from test_data_streaming import write_shards

HERE = Path(__file__).parent


def test_two_ranks_see_every_row_exactly_once_per_epoch(tmp_path):
    write_shards(tmp_path / "train", [150, 93], seed=0)
    write_shards(tmp_path / "valid", [60, 40], seed=1)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", str(HERE / "stream_worker.py"), str(tmp_path)]
    command += [str(tmp_path)]
    launch(command, PYTHONPATH=os.pathsep.join(sys.path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    steps = ranks[0]["steps"]
    assert steps == ranks[1]["steps"] == 2 * 7  # ceil(243 / 40) global batches per epoch
    for epoch in range(2):
        seen = [
            row
            for rank in ranks
            for batch in rank["ids"][epoch * 7 : (epoch + 1) * 7]
            for row in batch
        ]
        assert sorted(seen) == list(range(243))
    for rank in ranks:  # a rank reads the rows it trains on and no other
        trained = sorted(row for batch in rank["ids"] for row in batch)
        read = sorted(row for first, rows in rank["read"] for row in range(first, first + rows))
        assert read == trained and len(trained) in (2 * 121, 2 * 122)
    assert ranks[0]["auc"] == ranks[1]["auc"]  # gathered: the same metric on every rank
