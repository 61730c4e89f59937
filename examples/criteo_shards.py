"""Write synthetic Criteo-shaped data for the streaming examples.

Default: Parquet shards for examples/criteo_streaming.toml (13 numeric + 26 categorical
columns, a click label from a known logistic model and a logged ``teacher_logit`` column, the
true logit plus noise), written to data/criteo_shards/{train,valid,test}/.

``--tsv``: raw Criteo-format day files (label, I1-I13, C1-C26, tab-separated, no header, some
cells empty, no teacher column) for examples/criteo_pipeline.toml, written to
data/criteo_raw/{train,valid,test}.tsv; convert them with `distill convert`.

Both are written block by block in bounded memory.

Run: python examples/criteo_shards.py [TRAIN_ROWS] [--tsv]   (default 2 000 000; 20 M works)
"""

import argparse

from distill.data.synthetic_shards import write_criteo_shards, write_criteo_tsv

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("rows", type=int, nargs="?", default=2_000_000, help="training rows")
parser.add_argument("--tsv", action="store_true", help="raw Criteo TSV instead of shards")
args = parser.parse_args()
held_out = max(args.rows // 20, 2_000)
for split, count, seed in (("train", args.rows, 0), ("valid", held_out, 1), ("test", held_out, 2)):
    if args.tsv:
        path = write_criteo_tsv(f"data/criteo_raw/{split}.tsv", rows=count, seed=seed)
        print(f"{split}: {count:,} lines in {path}")
    else:
        paths = write_criteo_shards(
            f"data/criteo_shards/{split}", rows=count, shard_rows=200_000, seed=seed
        )
        print(f"{split}: {count:,} rows in {len(paths)} shard(s)")
