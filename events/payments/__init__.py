"""Money: charging by card (services), refunds (refunds), Stripe's webhooks (webhooks), and
gateway.py, the only code that calls Stripe."""
