"""Outgoing mail: a durable outbox, its worker, the senders and the templates."""
