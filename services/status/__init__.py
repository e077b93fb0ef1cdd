"""The status service (built in the delivery-pipeline issue)."""
