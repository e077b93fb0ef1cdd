"""The status service: results and dead work in, Message records written in batches."""
