"""The broker's error tree; retry behaviour and HTTP mapping live on the classes.

BrokerError                      500 server_error
├── InvalidRequest               400 invalid_request_error   (not retryable)
│   ├── PayloadTooLarge          413
│   ├── ModelNotFound            404 model_not_found
│   └── KeyReused                422 idempotency_key_reused
├── AuthenticationError          401 invalid_api_key
├── PermissionDenied             403 permission_denied
├── ModelNotAllowed              403 model_not_allowed       (the tenant's model list)
├── QuotaExceeded                429 rate_limit_exceeded     (retryable, Retry-After)
├── BudgetExhausted              429 insufficient_quota      (the month's budget is spent)
├── NotFound                     404 not_found
├── Unavailable                  503 service_unavailable    (retryable, Retry-After)
└── ProviderError                from the provider's status
    ├── ProviderRateLimited      429 rate_limit_exceeded    (retryable, Retry-After)
    ├── ProviderUnavailable      502 provider_unavailable   (retryable: 5xx, timeouts)
    ├── ProviderAuthFailed       502 provider_auth_failed   (the broker's credentials)
    └── ProviderRejected         the provider's 4xx          (not retryable)
"""

from __future__ import annotations

from typing import ClassVar

from schemas.envelopes import ErrorInfo


class BrokerError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = None
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        provider_status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = code or self.code
        self.param = param
        self.retry_after = retry_after
        self.provider_status = provider_status

    @property
    def http_status(self) -> int:
        return self.status

    def info(self) -> ErrorInfo:
        """The error as it travels in envelopes and reaches the client."""
        return ErrorInfo(
            message=self.message,
            type=self.type,
            code=self.error_code,
            param=self.param,
            retryable=self.retryable,
            provider_status=self.provider_status,
            http_status=self.http_status,
            retry_after=self.retry_after,
        )


class InvalidRequest(BrokerError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class ModelNotFound(InvalidRequest):
    status = 404
    code = "model_not_found"


class KeyReused(InvalidRequest):
    """An Idempotency-Key sent again with a different body."""

    status = 422
    code = "idempotency_key_reused"


class PermissionDenied(BrokerError):
    """Authenticated, but its roles do not allow this (on this tenant)."""

    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class ModelNotAllowed(BrokerError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class QuotaExceeded(BrokerError):
    """A tenant's or key's rate or concurrency limit; `param` names it (`tenant.rpm`)."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class BudgetExhausted(BrokerError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class AuthenticationError(BrokerError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFound(BrokerError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class Unavailable(BrokerError):
    status = 503
    type = "server_error"
    code = "service_unavailable"
    retryable = True


class ProviderError(BrokerError):
    type = "provider_error"


class ProviderRateLimited(ProviderError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class ProviderUnavailable(ProviderError):
    status = 502
    code = "provider_unavailable"
    retryable = True


class ProviderRejected(ProviderError):
    """A 4xx from the provider: the request itself is wrong, retrying will not help."""

    type = "invalid_request_error"

    @property
    def http_status(self) -> int:
        return self.provider_status or 400


class ProviderAuthFailed(ProviderError):
    """The provider refused the broker's own credentials (401/403): an operator must act."""

    status = 502
    code = "provider_auth_failed"
