"""Errors the domain raises; the API maps each to a wire error code."""


class DomainError(Exception):
    """Base of every rule violation a caller can act on."""

    code = "domain_error"


class InvalidTransition(DomainError):
    """The current status of a recording (or another aggregate, named by `what`) does not allow the action."""

    code = "invalid_transition"

    def __init__(self, *, status: str, action: str, what: str = "recording") -> None:
        super().__init__(f"cannot {action} a {what} that is {status}")
        self.status = status
        self.action = action


class NotFound(DomainError):
    """The thing does not exist, or belongs to someone else (both look the same to callers)."""

    code = "not_found"

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"{what} {ident} not found")


class ConcurrentUpdate(DomainError):
    """Someone else changed the aggregate between our read and our write; retry the use case."""

    code = "conflict"
