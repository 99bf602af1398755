"""PaymentGateway adapters (see tonearm.ports.payments)."""
