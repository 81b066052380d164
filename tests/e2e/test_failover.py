"""Losing the database primary: a synchronous standby is promoted while the axis runs.

A short run of bench/failover.py in every `make test`; the default run with `RUN_SLOW=1 make test`.
Losses and duplicates are judged from the senders' and recipients' own records (bench/dms.py).
"""

from __future__ import annotations

import pytest

from bench.failover import failover


def _assert_nothing_lost(result: dict[str, object]) -> None:
    assert result["acknowledged"] == result["submitted"], result
    assert result["lost"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["received_unasked"] == 0, result
    assert result["unsettled_deliveries"] == 0, result
    assert result["audit_chain_intact"], result
    assert result["served_by_promoted_standby"], result
    # The servers reconnected on their own: they kept sealing and answering without a restart.
    assert result["axis_sealed_everything_after_failover"], result
    assert result["server_failures"] == 0, result
    assert result["ok"], result


async def test_a_standby_promoted_under_load_loses_no_acknowledged_package() -> None:
    result = await failover(rate=8, before_s=3, promote_after_s=1.5, after_s=3)

    _assert_nothing_lost(result)
    # The outage was seen (the kill happened under load) and was answered with 503, then ended.
    assert result["resubmitted"] > 0, result
    assert result["readyz_503_s"] > 0, result
    assert 0 < float(result["unavailable_s"]) < 15, result  # type: ignore[arg-type]


@pytest.mark.slow
async def test_the_default_failover_run_loses_nothing() -> None:
    result = await failover()

    _assert_nothing_lost(result)
    assert float(result["unavailable_s"]) < 15, result  # type: ignore[arg-type]
