"""The scheduler's warning signal, as the training process and the study executor both see it.

Light on purpose (no torch): the CLI maps :class:`PreemptedError` to its exit status, and the
study executor reads that status, without importing the training stack.
"""

from __future__ import annotations

#: the scheduler's warning signal (submitit asks SLURM for it ``slurm_signal_delay_s`` before the
#: time limit; ``scancel --signal=USR2`` sends it by hand)
PREEMPT_SIGNAL = "SIGUSR2"
#: exit status of a run stopped by that signal: EX_TEMPFAIL, "try again" (``--resume`` continues it)
PREEMPTED_EXIT = 75


class PreemptedError(Exception):
    """The warning signal arrived; training stopped at a step boundary and can be resumed."""

    def __init__(self, epoch: int, global_step: int, checkpoint: str | None):
        self.epoch, self.global_step, self.checkpoint = epoch, global_step, checkpoint
        where = f"resumes from {checkpoint}" if checkpoint else "no epoch finished yet: restarts from scratch"
        super().__init__(
            f"stopped by {PREEMPT_SIGNAL} at epoch {epoch}, global step {global_step}; "
            f"`miamind train --resume` {where}"
        )


#: exit status of a run ended by SIGTERM (the shell's 128 + 15)
TERMINATED_EXIT = 143


class TerminatedError(Exception):
    """SIGTERM (a cancelled or killed job) stopped training; the run is not finished.

    Lightning turns SIGTERM into ``SIGTERMException``, a ``SystemExit`` without a code -- exit
    status 0, which would make an unfinished run look like a success to whoever started it.
    """

    def __init__(self, run_dir: str):
        super().__init__(
            f"{run_dir}: stopped by SIGTERM before it finished; `miamind train --resume {run_dir}` continues it"
        )
