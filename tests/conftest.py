"""Fixtures every test folder may use."""

import pytest
import torch
from accelerate.state import AcceleratorState


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module, and in the subprocesses it starts (OMP_NUM_THREADS=1): tiny models train
    fastest on one thread (two threads on shared cores wait on each other, up to 50x slower), and every process does
    the same arithmetic (bitwise comparisons). Afterwards the thread count and Accelerate's process-wide state (which
    a recipe run leaves behind) are restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)
    AcceleratorState._reset_state(reset_partial_state=True)
