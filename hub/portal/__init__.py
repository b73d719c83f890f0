"""The heartbeat portal: a browser page at ``/portal`` for the people of a tenant (see ``routes.py``)."""
