"""Run B of the resume test: a real ``miamind`` training run that SIGKILLs itself mid-epoch.

``python _kill_run.py RUN_DIR CONFIG_YAML KILL_AT_STEP``: trains the config into RUN_DIR and, when
the global step reaches KILL_AT_STEP, kills its own process without any cleanup (as a crash or
an out-of-memory kill would).
"""

import os
import signal
import sys

import lightning.pytorch as pl

from miamind.engine.config import load_config
from miamind.engine.train import train


class KillAt(pl.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    run_dir, config, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
    train(load_config(config), run_dir, callbacks=[KillAt(step)], quiet=True)
    raise SystemExit("the run was meant to be killed before it ended")
