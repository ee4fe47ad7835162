//! Problem JSON (RFC 7807 style) exactly as surface 2's existing clients parse it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer of surface 2 (and of the native API).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// HTTP status, repeated in the body.
    pub status: u16,
    /// Reason phrase.
    pub title: &'static str,
    /// Fixed description per status.
    pub detail: &'static str,
    /// MDN page of the status.
    #[serde(rename = "type")]
    pub kind: String,
    /// Specific messages (400 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    #[serde(skip)]
    #[schema(ignore)]
    retry_after_secs: Option<u32>,
}

/// Error strings existing clients match on.
pub mod messages {
    /// Enrollment of an id that exists.
    pub const DUPLICATE_ID: &str = "provided userId already exists";
    /// No face in the image.
    pub const NO_FACE: &str = "no face detected in the provided image";
    /// The face did not pass liveness (a print, a screen replay).
    pub const NOT_LIVE: &str = "the face in the provided image did not pass the liveness check";
}

impl Problem {
    fn new(status: StatusCode, detail: &'static str, errors: Option<Vec<String>>) -> Problem {
        Problem {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            detail,
            kind: format!(
                "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/{}",
                status.as_u16()
            ),
            errors,
            retry_after_secs: None,
        }
    }

    /// A problem listing `errors` (codes or messages).
    fn listing(
        status: StatusCode,
        detail: &'static str,
        errors: impl IntoIterator<Item = impl Into<String>>,
    ) -> Problem {
        Problem::new(
            status,
            detail,
            Some(errors.into_iter().map(Into::into).collect()),
        )
    }

    /// 400 with the given messages.
    pub fn bad_request(errors: impl IntoIterator<Item = impl Into<String>>) -> Problem {
        Problem::listing(StatusCode::BAD_REQUEST, "Invalid request.", errors)
    }

    /// 409 with the given codes (native API: duplicate id, a used challenge).
    pub fn conflict(errors: impl IntoIterator<Item = impl Into<String>>) -> Problem {
        Problem::listing(
            StatusCode::CONFLICT,
            "The request conflicts with stored data.",
            errors,
        )
    }

    /// 410 with the given codes (an expired challenge).
    pub fn gone(errors: impl IntoIterator<Item = impl Into<String>>) -> Problem {
        Problem::listing(StatusCode::GONE, "The resource has expired.", errors)
    }

    /// 422 with the engine's codes: the input was read but cannot be used (no face,
    /// several faces, quality gate).
    pub fn unprocessable(errors: impl IntoIterator<Item = impl Into<String>>) -> Problem {
        Problem::listing(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The image was read but cannot be used.",
            errors,
        )
    }

    /// 404.
    pub fn not_found() -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Server cannot find the requested resource.",
            None,
        )
    }

    /// 401: missing or unknown key.
    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "Missing or invalid API key.",
            None,
        )
    }

    /// 403: the key's role does not allow this.
    pub fn forbidden() -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "This API key may not do that.", None)
    }

    /// 413.
    pub fn too_large() -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The image exceeds the size limit.",
            None,
        )
    }

    /// 503 with Retry-After: the kiosk camera has no frame to show yet (starting, or
    /// reconnecting).
    pub fn no_frame() -> Problem {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The camera has no frame yet; retry shortly.",
            None,
        );
        p.retry_after_secs = Some(1);
        p
    }

    /// 503 with Retry-After: the inference pool is saturated.
    pub fn busy() -> Problem {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy; retry shortly.",
            None,
        );
        p.retry_after_secs = Some(1);
        p
    }

    /// 500; the cause is logged (inside the request's span, so with its request id), never
    /// returned to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %cause, "internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred.",
            None,
        )
    }
}

impl From<&faceid_service::Failure> for Problem {
    /// The native API's answer for a use case that ended without a verdict: one total
    /// mapping of the failure's class (400 input, 413 too large, 422 capture, 404, 409,
    /// 500 logged).
    fn from(failure: &faceid_service::Failure) -> Problem {
        use faceid_service::Class;
        match failure.class() {
            Class::Input => Problem::bad_request([failure.code()]),
            Class::TooLarge => Problem::too_large(),
            Class::Capture => Problem::unprocessable([failure.code()]),
            Class::NotFound => Problem::not_found(),
            Class::Conflict => Problem::conflict([failure.code()]),
            Class::Installation | Class::Internal => Problem::internal(failure),
        }
    }
}

impl From<faceid_service::Failure> for Problem {
    fn from(failure: faceid_service::Failure) -> Problem {
        Problem::from(&failure)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after_secs;
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
