import os
import threading

from shared.priority import MAX_NICE, lower_thread_priority


def _in_thread(nice: int) -> tuple[int, int, int]:
    """(returned, the thread's nice after, this thread's nice) for a fresh thread lowered by ``nice``."""
    result: list[int] = []
    started, done = threading.Event(), threading.Event()

    def body() -> None:
        started.set()
        done.wait(5)

    thread = threading.Thread(target=body)
    thread.start()
    started.wait(5)
    assert thread.native_id is not None
    result.append(lower_thread_priority(thread.native_id, nice))
    result.append(os.getpriority(os.PRIO_PROCESS, thread.native_id))
    done.set()
    thread.join(5)
    return result[0], result[1], os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_only_the_given_thread_is_lowered() -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    returned, after, mine = _in_thread(3)
    assert returned == after == min(MAX_NICE, before + 3)
    assert mine == before


def test_zero_changes_nothing_and_the_ceiling_holds() -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert _in_thread(0)[:2] == (before, before)
    assert _in_thread(MAX_NICE)[:2] == (MAX_NICE, MAX_NICE)
