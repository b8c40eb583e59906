"""Children that die with the process that started them: ``python -m videorft.lifetime --parent PID -- COMMAND``.

A training launch is a tree: the Dagster step starts ``torchrun`` (or ``accelerate launch``), which starts one
process per rank, each in a session of its own. When the step is killed outright (SIGKILL, the OOM killer, a
lost run worker) nothing forwards the signal: ``torchrun`` and its ranks would go on training, holding the GPUs
and writing into the run folder that the retried step resumes from. Linux's ``PR_SET_PDEATHSIG`` asks the kernel
to signal a process when its parent goes; it survives ``execve``, so this module sets it and then becomes
``COMMAND``. The launcher wraps every local launch in it, and a rank started by torch elastic sets it for itself
(its parent is the elastic agent), so killing the step takes the agent, and the agent's death takes the ranks.

The kernel watches the thread that started the child, not the whole process: start it from a thread that
outlives it (a Dagster step waits on its launch in the thread that started it). Elsewhere than Linux it does
nothing. A plain ``python -m training.sft`` from a shell does not set it: a run a
user started with ``nohup`` must outlive the shell.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits, and send it now if the parent has
    already gone: when ``parent`` (its pid, as the parent knew it) is no longer our parent, or, without it, when
    the parent changed during the call. False where the platform has no such call."""
    if not sys.platform.startswith("linux"):
        return False
    if sig != signal.SIGKILL:
        restore_default(sig)  # the kernel's signal must land
    before = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != (before if parent is None else parent):  # gone before the kernel could be asked
        os.kill(os.getpid(), sig)
    return True


def restore_default(*sigs: int) -> None:
    """Undo an inherited ignore or block of ``sigs``: both survive fork and exec, and a process started from a
    non-interactive shell's background job (``make run &``, a CI script) holds SIGINT ignored, as the full test
    suite's pytest process holds SIGTERM. A stop signal sent to the command would then do nothing."""
    if hasattr(signal, "pthread_sigmask"):  # not on Windows, which has no signal masks
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(sigs))
    for sig in sigs:
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)


def guard_elastic_rank() -> None:
    """In a rank that torch elastic (``torchrun``, ``accelerate launch``) started: die with the agent. SIGKILL,
    which no library's handler can catch: a rank without its agent has nothing to finish (the run resumes from
    its last checkpoint)."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        die_with_parent(signal.SIGKILL)


def wrap(command: list[str]) -> list[str]:
    """``command``, to be started by this process, run so that it dies with this process."""
    return [sys.executable, "-m", "videorft.lifetime", "--parent", str(os.getpid()), "--", *command]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    parent = None
    if args[:1] == ["--parent"]:
        parent, args = int(args[1]), args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: python -m videorft.lifetime [--parent PID] -- COMMAND [ARGS...]")
    # SIGINT is how a Dagster run's cancel reaches the launch (PipesSubprocessClient forwards it): it must stop
    # the command, not be ignored as the step's process may ignore it
    restore_default(signal.SIGINT)
    die_with_parent(parent=parent)  # SIGTERM: torchrun's agent then stops its ranks itself
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
