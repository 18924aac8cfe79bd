//! The HTTP floor of the benchmark (PERFORMANCE.md): axum answering a `POST` with a small form
//! body with a constant, on the same runtime settings as grantry. `cargo run --release
//! --example floor -p grantry-server -- 127.0.0.1:9900`
use axum::routing::post;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9900".into());
    let app = Router::new().route(
        "/",
        post(|body: axum::body::Bytes| async move {
            let _ = body.len();
            "{\"ok\":true}"
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
