"""The driver's thread counts: one thread for small steps, the count in force for large steps and for
kernel calls long enough to hold up when another process shares a core, run.threads above both."""
from games.driver import LONG_KERNEL, SMALL_WORK, threads, threads_for, threads_for_kernel
from games.execution import using


def test_small_work_takes_one_thread_and_large_work_the_count_in_force():
    with threads(2):
        assert (threads_for(SMALL_WORK - 1), threads_for(SMALL_WORK)) == (1, 2)
        assert (threads_for_kernel(LONG_KERNEL - 1), threads_for_kernel(LONG_KERNEL)) == (1, 2)
        with using(threads=3):
            assert threads_for(1) == threads_for_kernel(1) == 3
    with threads(1):
        assert threads_for_kernel(LONG_KERNEL) == 1  # never more than the count in force
