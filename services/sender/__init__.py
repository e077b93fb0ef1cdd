"""The sender service (built in the delivery-pipeline issue)."""
