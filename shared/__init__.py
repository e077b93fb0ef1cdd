"""Code used by more than one mailer service: settings, database, logging, time zones."""
