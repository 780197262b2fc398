//! Serving an axum router on a loopback port, and sending it requests over real HTTP.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{Method, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

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

/// `method path` over a new connection, with `headers` (and `host: localhost`) and an empty
/// body; the response, its body read whole.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Response<Bytes> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let (head, body) = res.into_parts();
    Response::from_parts(head, body.collect().await.unwrap().to_bytes())
}
