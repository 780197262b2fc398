//! Serving an axum router on a loopback port, for the tests that speak real HTTP to it.

use std::net::SocketAddr;

/// Serves `app` on a free loopback port, with the peer's address (`ConnectInfo`); the
/// server runs until the test's runtime ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}
