"""The event log and what reads it: ``log`` writes events in commit order, ``bus`` fans them out to live
subscribers, ``ledger`` counts live subscriptions across hub processes."""
