"""Webhook endpoints and deliveries."""

from __future__ import annotations

from beanie import Document

MODELS: list[type[Document]] = []
