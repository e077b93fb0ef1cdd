"""The planner: starts due mailings, materialises their audience, dispatches work to the
senders, expires what can no longer be sent and finishes mailings (``mailer planner``)."""
