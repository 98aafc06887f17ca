"""Operators' tools that are not pages: API keys and the admin API behind them."""
