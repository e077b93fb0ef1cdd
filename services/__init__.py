"""The mailer services: api, planner, sender, status."""
