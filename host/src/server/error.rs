//! The one place errors become HTTP responses: the OpenAI error body
//! `{"error": {"message", "type", "param", "code"}}` with the right status, so
//! handlers just use `?`.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::conn::BodyTimeout;
use crate::agent::TurnError;
use crate::llm::LlmError;
use crate::plugins::ToolError;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<String>,
    param: Option<String>,
    message: String,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 for a request that is well-formed JSON but not acceptable.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            param: param.map(str::to_owned),
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 404 naming what was not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: Some("not_found".into()),
            param: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 401 for a missing or wrong API key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            message,
        )
    }

    /// A 429 for a caller over its rate limit.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
            message,
        )
    }

    /// A 403 for a request this server refuses to answer (`code` says why).
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            code,
            message,
        )
    }

    /// A 409 for a request the resource's state does not allow (`code` says why).
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
    }

    /// A 415 for a body that is not declared JSON.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            "unsupported_media_type",
            message,
        )
    }

    /// A 503 when every turn slot stayed busy for the queue timeout.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "server_busy",
            message,
        )
    }

    /// A 500 for a fault of the server itself (logged).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }

    fn new(status: StatusCode, kind: &'static str, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: Some(code.to_owned()),
            param: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    /// Seconds the client should wait before retrying, if waiting helps.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
    }

    /// The status, for logging and tests.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body, for SSE streams that have already sent their headers.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), "{}", self.message);
        }
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<anyhow::Error> for ApiError {
    /// Internal faults (the store failing, a task dying): a 500 whose message
    /// names the cause, so operators can act on it.
    fn from(e: anyhow::Error) -> Self {
        Self::internal(format!("{e:#}"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match rejection {
            JsonRejection::BytesRejection(unread) => return unread.into(),
            JsonRejection::MissingJsonContentType(_) => {
                return Self::unsupported_media_type(
                    "send the body as JSON with `Content-Type: application/json`",
                );
            }
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_type"),
            _ => (StatusCode::BAD_REQUEST, "invalid_body"),
        };
        // `body_text` carries serde's precise reason (line, column, field).
        Self::new(
            status,
            "invalid_request_error",
            code,
            format!("invalid JSON body: {}", rejection.body_text()),
        )
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        Self::unreadable_body(&rejection)
    }
}

impl ApiError {
    fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_too_large",
            "the request body is larger than this server accepts ([server] max_body_bytes); send less",
        )
    }

    /// A body that could not be read: too large (413), too slow (408), or
    /// cut off (400), judged by the cause anywhere in `error`'s chain.
    pub fn unreadable_body(error: &(dyn std::error::Error + 'static)) -> Self {
        use http_body_util::LengthLimitError;
        let mut cause = Some(error);
        while let Some(e) = cause {
            // axum boxes the limit's error once more on some paths.
            if e.is::<LengthLimitError>() || e.is::<Box<LengthLimitError>>() {
                return Self::body_too_large();
            }
            if let Some(timeout) = e.downcast_ref::<BodyTimeout>() {
                return Self::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "invalid_request_error",
                    "body_timeout",
                    timeout.to_string(),
                );
            }
            cause = e.source();
        }
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_body",
            format!("cannot read the request body: {error}"),
        )
    }
}

impl From<ToolError> for ApiError {
    fn from(e: ToolError) -> Self {
        let status = match &e {
            ToolError::UnknownTool { .. } => StatusCode::NOT_FOUND,
            ToolError::InvalidArguments(_) => StatusCode::BAD_REQUEST,
            ToolError::Failed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ToolError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ToolError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ToolError::Trap { .. }
            | ToolError::OutOfMemory { .. }
            | ToolError::OutOfFuel { .. }
            | ToolError::StackOverflow { .. }
            | ToolError::OutputTooLarge { .. }
            | ToolError::QuotaExceeded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let kind = if status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND {
            "invalid_request_error"
        } else {
            "tool_error"
        };
        Self {
            status,
            kind,
            code: Some(e.code().into()),
            param: None,
            message: e.to_string(),
            retry_after: None,
        }
    }
}

impl From<TurnError> for ApiError {
    fn from(e: TurnError) -> Self {
        let TurnError::Llm(llm) = e;
        let (status, code) = match &llm {
            LlmError::NoApiKey { .. } => (StatusCode::SERVICE_UNAVAILABLE, "llm_not_configured"),
            LlmError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "llm_timeout"),
            LlmError::Status { .. } | LlmError::Connect { .. } | LlmError::Invalid { .. } => {
                (StatusCode::BAD_GATEWAY, "llm_error")
            }
        };
        Self {
            status,
            kind: "api_error",
            code: None,
            param: None,
            message: llm.to_string(),
            retry_after: None,
        }
        .with_code(code)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::body::{Body, Bytes};
    use axum::extract::FromRequest;

    use super::*;

    #[tokio::test]
    async fn bodies_over_the_limit_are_413_however_they_were_read() {
        let read = axum::body::to_bytes(Body::from(vec![b'x'; 100]), 10).await;
        let e = ApiError::unreadable_body(&read.unwrap_err());
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let request = axum::extract::Request::new(Body::from(vec![b'x'; 3 << 20]));
        let rejection = Bytes::from_request(request, &()).await.unwrap_err();
        assert_eq!(
            ApiError::from(rejection).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
