"""The planner service (built in the delivery-pipeline issue)."""
