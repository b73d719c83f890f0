"""Live supply-flow subscriptions: stock changes and dispatch updates, read from the event log."""
