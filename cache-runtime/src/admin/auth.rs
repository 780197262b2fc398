//! Who may call the admin router: bearer tokens compared in constant time, and loopback-only
//! routers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The actor of a request, for audit events: `admin:<token name>` or `admin:loopback`.
#[derive(Debug, Clone)]
pub(crate) struct Actor(pub Arc<str>);

/// A configured token: its name and the SHA-256 of its secret. Comparing digests of equal
/// length in constant time leaks neither the secret nor its length.
pub(crate) struct Token {
    actor: Arc<str>,
    digest: [u8; 32],
}

impl Token {
    pub fn new(name: String, secret: &str) -> Token {
        Token {
            actor: format!("admin:{name}").into(),
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }
}

/// Which configured token `presented` is, in time that depends on neither: every token is
/// compared, and the comparisons are constant-time.
fn matching<'a>(tokens: &'a [Token], presented: &[u8]) -> Option<&'a Token> {
    let digest: [u8; 32] = Sha256::digest(presented).into();
    let mut found = None;
    for token in tokens {
        if bool::from(token.digest.ct_eq(&digest)) {
            found = Some(token);
        }
    }
    found
}

/// The peer's address, when axum was told it.
fn peer(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Refuses requests that do not come from a loopback address, when the router is
/// loopback-only.
fn check_loopback(state: &super::State, req: &Request) -> Result<(), ApiError> {
    if !state.loopback_only {
        return Ok(());
    }
    match peer(req) {
        Some(addr) if addr.ip().is_loopback() => Ok(()),
        Some(_) => Err(ApiError::forbidden(
            "not_loopback",
            "this admin router answers loopback addresses only",
        )),
        None => Err(ApiError::forbidden(
            "no_peer_address",
            "this loopback-only admin router cannot tell the peer's address: serve it with \
             `into_make_service_with_connect_info::<SocketAddr>()`",
        )),
    }
}

/// The middleware of every API route.
pub(crate) async fn require_token(
    State(state): State<Arc<super::State>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Err(e) = check_loopback(&state, &req) {
        return e.into_response();
    }
    let actor = if state.tokens.is_empty() {
        // Loopback-only without a token (checked when built): a page of another site in a
        // local browser may still send requests here; it cannot change anything.
        let mutating = !matches!(*req.method(), Method::GET | Method::HEAD);
        if mutating && req.headers().contains_key(header::ORIGIN) {
            return ApiError::forbidden(
                "cross_origin",
                "mutating requests from a browser page need a token-protected admin router",
            )
            .into_response();
        }
        Arc::from("admin:loopback")
    } else {
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return ApiError::unauthorized("send `Authorization: Bearer <token>`").into_response();
        };
        let presented = value.as_bytes();
        let secret = match presented.split_at_checked(7) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => rest,
            _ => {
                return ApiError::unauthorized("send `Authorization: Bearer <token>`")
                    .into_response();
            }
        };
        match matching(&state.tokens, secret) {
            Some(token) => token.actor.clone(),
            None => return ApiError::unauthorized("the token is not valid").into_response(),
        }
    };
    req.extensions_mut().insert(Actor(actor));
    next.run(req).await
}

/// The middleware of the dashboard page: no token (the page holds no data and asks the API
/// with one), but loopback-only routers still answer loopback addresses only.
pub(crate) async fn require_loopback(
    State(state): State<Arc<super::State>>,
    req: Request,
    next: Next,
) -> Response {
    match check_loopback(&state, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_presented_and_no_other() {
        let tokens = [
            Token::new("ops".into(), "0123456789abcdef"),
            Token::new("ci".into(), "fedcba9876543210"),
        ];
        let who = |s: &str| matching(&tokens, s.as_bytes()).map(|t| t.actor.to_string());
        assert_eq!(who("0123456789abcdef").as_deref(), Some("admin:ops"));
        assert_eq!(who("fedcba9876543210").as_deref(), Some("admin:ci"));
        assert_eq!(who("0123456789abcde"), None);
        assert_eq!(who(""), None);
    }
}
