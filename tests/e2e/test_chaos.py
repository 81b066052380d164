"""Nothing acknowledged is lost when servers are SIGKILLed and PostgreSQL restarts under load.

Judged from the senders' and recipients' own records; senders resubmit after uncertain outcomes.

A short run of bench/chaos.py in every `make test`; the full run (20 kills) with `RUN_SLOW=1 make test`.
"""

from __future__ import annotations

import pytest

from bench.chaos import chaos


async def test_kills_and_a_postgres_restart_lose_and_duplicate_nothing() -> None:
    result = await chaos(kills=3, seconds=10, seed=8)

    assert result["acknowledged"] > 0
    assert result["server_kills"] == 3
    assert result["postgres_restarted"]
    assert result["lost"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["unsettled_deliveries"] == 0, result
    assert result["second_fan_out"] == 0, result
    assert result["audit_chain_intact"], result
    assert result["received_unasked"] == 0, result
    assert result["settled_in_time"], result
    # Senders resubmitted after uncertain outcomes (kills, the restart), and it made no duplicate.
    assert result["resubmitted"] > 0, result
    # PostgreSQL being away is reported as retryable, never as an internal error; nothing was refused.
    assert result["refused"] == {}, result
    assert not [kind for kind in result["client_errors"] if kind.startswith("http_500")], result


@pytest.mark.slow
async def test_the_full_chaos_run_loses_and_duplicates_nothing() -> None:
    result = await chaos(kills=20, seconds=60, seed=20261121)

    assert result["server_kills"] == 20
    assert result["ok"], result
    assert not [kind for kind in result["client_errors"] if kind.startswith("http_500")], result
