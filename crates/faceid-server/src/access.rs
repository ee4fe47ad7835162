//! Who may call the surfaces whose existing clients send no credentials (1 and 3): callers
//! on loopback, or anyone holding a valid `x-api-key`.
//!
//! POST handlers check only after reading their body: answering before it leaves unread
//! bytes on a keep-alive connection, which the client then reuses and sees cut off.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Multipart};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::AppState;
use crate::keys::Role;
use crate::problem::Problem;

/// What a POST handler needs to check its caller once the body is read.
#[derive(Debug)]
pub struct CallerParts {
    headers: HeaderMap,
    peer: Option<ConnectInfo<SocketAddr>>,
}

impl CallerParts {
    /// Whether the caller is on loopback (when keyless loopback is enabled) or holds a
    /// valid API key.
    pub fn allowed(&self, state: &AppState) -> bool {
        self.actor(state, Role::Client).is_some()
    }

    /// Who the caller is, for the audit log, if they may act with `role`: `loopback` for a
    /// keyless local caller (allowed unless the server runs with `--require-keys`), else the
    /// id of their API key when its role suffices.
    pub fn actor(&self, state: &AppState, role: Role) -> Option<String> {
        let key = self
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .and_then(|k| state.keys.find(k));
        if let Some(key) = key {
            return (key.role >= role).then(|| key.id.clone());
        }
        let loopback = self
            .peer
            .is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback());
        (loopback && state.keyless_loopback).then(|| "loopback".to_string())
    }
}

impl FromRequestParts<AppState> for CallerParts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(CallerParts {
            headers: parts.headers.clone(),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().copied(),
        })
    }
}

/// One part of a multipart body: field name, file name, bytes.
pub type Part = (String, Option<String>, Vec<u8>);

/// Reads every part of a multipart body.
pub async fn read_parts(mut multipart: Multipart) -> Result<Vec<Part>, String> {
    let mut out = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(|e| e.body_text())?.to_vec();
        out.push((name, file_name, bytes));
    }
    Ok(out)
}

/// The id of the caller's `x-api-key` if its role is at least `role` (surface 2 and the
/// native API, whose clients always send one): 401 without a valid key, 403 below the role.
pub fn keyed(state: &AppState, headers: &HeaderMap, role: Role) -> Result<String, Problem> {
    let secret = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(Problem::unauthorized)?;
    let key = state.keys.find(secret).ok_or_else(Problem::unauthorized)?;
    if key.role < role {
        return Err(Problem::forbidden());
    }
    Ok(key.id)
}
