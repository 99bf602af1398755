"""An operator's gift (`tonearm user premium`): a plan for some days, no charge, ending by itself."""

from __future__ import annotations

import pytest

from tonearm.kernel.errors import BadRequest, Conflict

from .conftest import World


def test_a_comped_plan_is_premium_without_a_charge_and_ends_by_itself(world: World) -> None:
    ada = world.listener("Ada")
    world.c.billing.comp(ada.user_id, "premium_family", 10)
    assert world.product(ada) == "premium"
    sub = world.subscription(ada)
    assert sub["plan"]["id"] == "premium_family" and sub["cancel_at_period_end"] is True
    assert world.charges() == [] and world.invoices(ada) == []
    assert world.decisions(ada)[-1] == (True, "comped")
    with pytest.raises(Conflict):  # one plan at a time
        world.c.billing.comp(ada.user_id, "premium_individual", 10)
    with pytest.raises(BadRequest):
        world.c.billing.comp(world.listener("Bob").user_id, "free", 10)
    world.clock.advance(10 * 86400)
    world.sweep()
    assert world.product(ada) == "free"
    assert world.charges() == []
