"""A local stand-in for the SMS provider (SPEC §4.1): its contract, fault injection, a journal."""
