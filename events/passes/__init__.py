"""Class passes: products, the credit ledger, buying, booking with a pass."""
