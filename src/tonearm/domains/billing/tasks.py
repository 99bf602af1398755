"""Billing's jobs: renewing one subscription, the sweep that finds what is due, and refunds.
(Webhook deliveries arrive as the gateway sends them: the sandbox's own job, see
adapters/payments/sandbox.py.) They take ids and reload the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from tonearm.domains.billing.service import REFUND_JOB, RENEW_JOB, SWEEP_JOB
from tonearm.workers.runner import TaskRegistry

if TYPE_CHECKING:
    from tonearm.bootstrap import Container

log = structlog.get_logger("tonearm.billing")


def register(registry: TaskRegistry) -> None:
    @registry.task(RENEW_JOB)
    def renew(c: Container, payload: dict[str, Any]) -> None:
        c.billing.renew(payload["subscription_id"])

    @registry.task(SWEEP_JOB)
    def sweep(c: Container, payload: dict[str, Any]) -> None:
        c.billing.run_due()

    @registry.task(REFUND_JOB)
    def refund(c: Container, payload: dict[str, Any]) -> None:
        c.billing.refund_payment(payload["payment_id"])
