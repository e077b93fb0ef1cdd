"""The whole stack as local processes (``mailer up``, ``mailer demo``), without Docker."""
