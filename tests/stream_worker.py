"""Worker of test_train_streaming_ddp: fit over streamed shards, recording the ids each rank
trains on (run under torchrun)."""

import json
import sys

import torch
import torch.distributed as dist

from distill.data.streaming import StreamingTable
from distill.models import WideAndDeep
from distill.train import BinaryKDTerm, Objective, TrainOptions, fit
from test_data_streaming import open_table
from test_train_streaming import RecordingTeacher

folder, out = sys.argv[1], sys.argv[2]
read = []  # (id of the first row, rows) of each train record batch this rank read
original = StreamingTable.read_shard


def recording(self, shard, rows=None):
    for piece in original(self, shard, rows):
        if "/train/" in shard.path:
            read.append((int(piece.ids[0]), len(piece)))
        yield piece


StreamingTable.read_shard = recording
table = open_table(f"{folder}/train", shuffle_buffer=100)
teacher = RecordingTeacher()
torch.manual_seed(0)
result = fit(
    WideAndDeep(table.num_embeddings, table.width, hidden=(4,)),
    table,
    objective=Objective([BinaryKDTerm(soft_weight=0.5)]),
    options=TrainOptions(epochs=2, batch_size=40, device="cpu", progress=False, metric="auc"),
    teacher=teacher,
    valid=open_table(f"{folder}/valid"),
)
rank = dist.get_rank()
with open(f"{out}/rank{rank}.json", "w") as handle:
    json.dump(
        {
            "ids": [ids.tolist() for ids in teacher.ids],
            "steps": result.steps,
            "read": read,
            "auc": result.metrics["auc"],
        },
        handle,
    )
