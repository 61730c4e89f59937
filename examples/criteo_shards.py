"""Write synthetic Criteo-shaped Parquet shards for examples/criteo_streaming.toml.

13 numeric + 26 categorical columns, a click label from a known logistic model and a logged
``teacher_logit`` column (the true logit plus noise), shard by shard in bounded memory.

Run: python examples/criteo_shards.py [TRAIN_ROWS]   (default 2 000 000; 20 000 000 works too)
"""

import sys

from distill.data.synthetic_shards import write_criteo_shards

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
held_out = max(rows // 20, 2_000)
for split, count, seed in (("train", rows, 0), ("valid", held_out, 1), ("test", held_out, 2)):
    paths = write_criteo_shards(
        f"data/criteo_shards/{split}", rows=count, shard_rows=200_000, seed=seed
    )
    print(f"{split}: {count:,} rows in {len(paths)} shard(s)")
