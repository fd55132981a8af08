"""Test support for kv drivers (placeholder; the lead is writing it)."""
