//! `ApiError`: every error the API returns, written as an RFC 9457 problem document with a stable
//! `type` URI (`urn:lockergrid:problem:<kind>`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lockergrid_store::ChangeError;
use serde_json::{Map, Value, json};

/// Prefix of every problem `type`.
pub const TYPE_PREFIX: &str = "urn:lockergrid:problem:";

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    extra: Map<String, Value>,
    retry_after: Option<u64>,
    close: bool,
}

impl ApiError {
    /// A problem with a status, a stable kind, a fixed title and a specific detail.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
            close: false,
        }
    }

    /// Asks the client to close the connection after this response.
    pub fn closing(mut self) -> ApiError {
        self.close = true;
        self
    }

    /// Adds an extension member to the problem document.
    pub fn with(mut self, key: &str, value: Value) -> ApiError {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// Adds a `Retry-After` header, in seconds.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Malformed request",
            detail,
        )
    }

    /// 422: the request is well-formed but its values are not acceptable.
    pub fn invalid(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "Invalid request values",
            detail,
        )
    }

    /// 401: no valid bearer token.
    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    /// 403: the token's role or scope does not allow this.
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Not permitted", detail)
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 409: the resource is not in a state that allows this.
    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "state-conflict",
            "Conflicts with the current state",
            detail,
        )
    }

    /// 500: something failed inside the gateway; the detail stays in the log.
    pub fn internal(error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the gateway could not complete the request; it has been logged",
        )
    }

    /// 503: too many requests in flight, or one took too long.
    pub fn unavailable(kind: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            kind,
            "Temporarily unavailable",
            detail,
        )
        .retry_after(1)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("{TYPE_PREFIX}{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.extra);
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lockergrid\""),
            );
        }
        response
    }
}

impl From<lockergrid_store::StoreError> for ApiError {
    fn from(e: lockergrid_store::StoreError) -> ApiError {
        ApiError::internal(&e)
    }
}

/// 422: an `Idempotency-Key` came back with a different request.
pub fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency key reused",
        "this Idempotency-Key was used with a different request body",
    )
}

/// 503: the station's locker is not connected, so nothing can be unlocked there now.
pub fn locker_offline(station: &lockergrid_protocol::StationId) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "locker-offline",
        "The locker is not connected",
        format!(
            "the locker at {station} has not reported for {} s; nothing was unlocked",
            crate::devices::OFFLINE_AFTER.as_secs()
        ),
    )
    .retry_after(crate::devices::OFFLINE_AFTER.as_secs())
}

/// A code entry refused unchecked because its station's wrong codes make it wait `wait`.
pub fn too_many_attempts(wait: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-attempts",
        "Too many wrong codes",
        "code entry at this station waits after repeated wrong codes",
    )
    .retry_after(wait.as_secs().max(1))
}

/// A refused change as the problem its caller gets: not found, a conflict naming the status the
/// record is in, a rejected code, or the store's failure.
impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> ApiError {
        match e {
            ChangeError::NotFound { kind, id } => ApiError::not_found(format!("no {kind} {id:?}")),
            ChangeError::Conflict { kind, id, status } => {
                ApiError::conflict(format!("{kind} {id:?} is {status}"))
            }
            ChangeError::CodeRejected => ApiError::invalid("code rejected"),
            ChangeError::LockedOut(wait) => too_many_attempts(wait),
            ChangeError::IdempotencyMismatch => key_reused(),
            ChangeError::Invalid(why) => ApiError::invalid(why),
            ChangeError::Store(e) => ApiError::from(e),
        }
    }
}
