"""Kaltura archive domain: entry states, filters, health invariants, reports and stats."""
