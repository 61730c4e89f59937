"""Run a `torchrun` command for the multi-process tests, retrying once on gloo's teardown abort.

On this 2-core machine under a loaded test run, a finished rank was now and then aborted while
gloo tore down its threads ("terminate called without an active exception", SIGABRT) after
every result had been written. That abort, and only that abort, gets one more launch; any
other failure, and every assertion on the results, counts at once.
"""

import os
import subprocess

GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


def launch(command: list[str], **env: str) -> subprocess.CompletedProcess:
    """``command`` with ``OMP_NUM_THREADS=1`` (and ``env``); asserts that it, or its one retry,
    exits 0."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    for attempt in range(2):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0 or GLOO_TEARDOWN_ABORT not in done.stderr or attempt == 1:
            break
    assert done.returncode == 0, done.stderr[-3000:]
    return done
