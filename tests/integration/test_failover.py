"""Failover, switchover and rejoin against real PostgreSQL (placeholder)."""
