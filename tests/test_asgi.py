"""DisconnectWatch: watchers start only for requests that outlast the delay (one timer serves all
of them), and a client that leaves then cancels its own request and no other."""

import asyncio

from capsem_proxy.asgi import DisconnectWatch

DELAY_S = 0.02


def _receiver(leaves: bool) -> tuple[list[int], object]:
    calls = [0]

    async def receive() -> dict[str, str]:
        calls[0] += 1
        if leaves:
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # a client that stays: nothing more arrives
        raise AssertionError("unreachable")

    return calls, receive


async def _request(receive: object, lasts_s: float) -> bool:
    with DisconnectWatch(receive, DELAY_S) as watch:  # type: ignore[arg-type]
        await asyncio.sleep(lasts_s)
    return watch.client_left


def test_only_requests_that_outlast_the_delay_watch_and_a_leaving_client_cancels_only_its_own():
    async def scenario() -> None:
        quick_calls, quick = _receiver(leaves=True)
        gone_calls, gone = _receiver(leaves=True)
        staying_calls, staying = _receiver(leaves=False)
        results = await asyncio.gather(
            *(_request(quick, 0) for _ in range(50)),
            _request(gone, 10 * DELAY_S),
            _request(staying, 10 * DELAY_S),
        )
        assert results == [False] * 50 + [True, False]
        # Requests over before the delay never read their receive channel.
        assert quick_calls == [0]
        assert gone_calls == [1] and staying_calls == [1]

    asyncio.run(scenario())


def test_a_watch_closed_before_its_delay_never_starts():
    async def scenario() -> None:
        calls, receive = _receiver(leaves=True)
        watch = DisconnectWatch(receive, DELAY_S)  # type: ignore[arg-type]
        watch.close()
        await asyncio.sleep(3 * DELAY_S)
        assert calls == [0] and not watch.client_left

    asyncio.run(scenario())


def test_a_zero_delay_watch_starts_on_the_next_turn_and_closing_first_stops_it():
    async def scenario() -> None:
        calls, receive = _receiver(leaves=False)
        closed = DisconnectWatch(receive, 0.0)  # type: ignore[arg-type]
        closed.close()
        watching = DisconnectWatch(receive, 0.0)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert calls == [1]  # only the open watch reads the channel
        watching.close()

    asyncio.run(scenario())
