"""Credits: balances, the ledger that explains them, and holds."""
