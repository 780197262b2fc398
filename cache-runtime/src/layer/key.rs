//! Which limit a request counts against: its client's address, a header, or a closure.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderName, Request};

/// Names the limit a request counts against, for [`RateLimitLayer`](crate::RateLimitLayer).
///
/// `None` means the request carries nothing to tell its client by (no address, no header):
/// such requests share one limit, so leaving the header out never escapes the limit.
///
/// Implemented by [`ClientIp`], [`Header`], and every
/// `Fn(&Request<B>) -> Option<String> + Clone + Send + Sync + 'static`:
///
/// ```
/// use axum::http::Request;
///
/// // The tenant of `/tenants/<id>/...`.
/// let tenant = |req: &Request<axum::body::Body>| {
///     req.uri().path().strip_prefix("/tenants/")?.split('/').next().map(str::to_owned)
/// };
/// # let _ = cache_runtime::RateLimitLayer::new(cache_runtime::Cache::disabled(), 10, std::time::Duration::from_secs(1)).unwrap().key(tenant);
/// ```
pub trait KeyExtractor<B>: Clone + Send + Sync + 'static {
    /// The key of `req`'s limit.
    fn key(&self, req: &Request<B>) -> Option<String>;
}

impl<B, F> KeyExtractor<B> for F
where
    F: Fn(&Request<B>) -> Option<String> + Clone + Send + Sync + 'static,
{
    fn key(&self, req: &Request<B>) -> Option<String> {
        self(req)
    }
}

/// The client's IP address, from axum's [`ConnectInfo`]: serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()`. The peer's port is left out, so
/// every connection of a client shares its limit.
///
/// Behind a proxy, every request comes from the proxy: limit by the header the proxy sets
/// instead ([`Header`], with `x-forwarded-for` or `x-real-ip`), and only when the proxy
/// overwrites what clients send.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIp;

impl<B> KeyExtractor<B> for ClientIp {
    fn key(&self, req: &Request<B>) -> Option<String> {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
    }
}

/// The value of a request header, such as an API key or a user id set by an authentication
/// layer in front. A header that is absent or not visible ASCII counts as absent.
#[derive(Debug, Clone)]
pub struct Header(pub HeaderName);

impl Header {
    /// The header `name`.
    pub fn new(name: HeaderName) -> Self {
        Header(name)
    }
}

impl<B> KeyExtractor<B> for Header {
    fn key(&self, req: &Request<B>) -> Option<String> {
        let value = req.headers().get(&self.0)?.to_str().ok()?;
        Some(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_the_address_a_header_or_a_closure() {
        let mut req = Request::new(());
        assert_eq!(ClientIp.key(&req), None);
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 5123))));
        assert_eq!(ClientIp.key(&req).as_deref(), Some("10.0.0.7"));

        let header = Header::new(HeaderName::from_static("x-api-key"));
        assert_eq!(header.key(&req), None);
        req.headers_mut().insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(header.key(&req).as_deref(), Some("k1"));

        let path = |r: &Request<()>| Some(r.uri().path().to_owned());
        assert_eq!(path.key(&req).as_deref(), Some("/"));
    }
}
