"""The REST API: clients, mailings and statistics (SPEC §3)."""
