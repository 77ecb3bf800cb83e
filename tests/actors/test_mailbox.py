"""A mailbox is bounded: try_send says no when full, send gives up after its wait, receive gives
None when idle. Run on the virtual-time loop, so the waits cost no real time."""

from __future__ import annotations

import pytest

from actors.mailbox import Mailbox, MailboxFull
from sim.clock import VirtualClock, run_virtual


def test_a_full_mailbox_refuses_and_an_idle_one_times_out() -> None:
    clock = VirtualClock()

    async def main() -> None:
        box: Mailbox[int] = Mailbox(2)
        assert box.try_send(1) and box.try_send(2)
        assert not box.try_send(3)
        with pytest.raises(MailboxFull):
            await box.send(3, wait_s=5)
        assert clock.elapsed_us == 5_000_000
        assert await box.receive(1) == 1
        await box.send(3, wait_s=5)
        assert box.drain() == [2, 3]
        assert await box.receive(7) is None
        assert clock.elapsed_us == 12_000_000

    run_virtual(main, clock)
