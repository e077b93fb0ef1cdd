"""What stops a benchmark run."""


class BenchFailed(RuntimeError):
    """A scenario could not run to its end (stuck, refused, or a service died)."""
