"""Outgoing webhooks to partner ERPs, following Standard Webhooks (https://www.standardwebhooks.com/).

The flow, each step in its own module:

- ``service``: tenant admins register endpoints (URL, event types); the ``whsec_`` secret is answered once.
- ``dispatcher``: reads the event log and writes one ``WebhookDelivery`` per (event, endpoint) the endpoint's
  tenant is entitled to hear, resuming from a cursor stored in the database.
- ``worker``: leases due deliveries, signs (``signing``) and POSTs them (``delivery``) to an address the SSRF
  ``guard`` checked just before, and logs every attempt; ``retry`` decides what happens next.
- ``runtime``: runs both inside every hub process, or alone with ``lotpulse webhooks worker``.

A receiver verifies a delivery with the official library and dedupes on ``webhook-id`` (the event id, the same on
every retry and replay)::

    from standardwebhooks import Webhook
    event = Webhook("whsec_...").verify(request_body, request_headers)  # raises unless the signature matches
"""
