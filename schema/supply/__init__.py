"""Supply flow: dispatches, receipts, movements and stock positions."""
