"""What can go wrong while running the local stack; :class:`StackError` is the root."""


class StackError(Exception):
    """The local stack could not start, lost a service, or the demo failed."""


class StopRequested(StackError):
    """Control flow, not a failure: a signal asked the stack to stop."""


class ChildExited(StackError):
    """A service ended while the stack still needed it."""

    def __init__(self, name: str, exit_code: int | None) -> None:
        super().__init__(f"{name} exited unexpectedly with code {exit_code}")
        self.name = name
        self.exit_code = exit_code


class StartFailed(StackError):
    """A step before the services run (migrations, readiness) did not succeed."""


class DemoFailed(StackError):
    """The demo mailing did not finish, or its statistics disagree with the provider's."""
