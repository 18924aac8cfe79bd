//! What one client may cost the server (docs/architecture.md, the serving loop): the largest
//! body each route reads, and the connection limits of [`Limits`], which `[http]` configures.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Largest body of the token endpoint family (`/oauth/token`, `/oauth/introspect`,
/// `/oauth/revoke`): a form of a few parameters.
pub const TOKEN_BODY: usize = 16 * 1024;
/// Largest body of the authorization endpoint's forms (sign-in and consent).
pub const AUTHORIZE_BODY: usize = 16 * 1024;
/// Largest body of the XML API, an envelope as a form field or a raw `text/xml` body.
pub const XML_BODY: usize = 1024 * 1024;
/// Largest body of the REST API's JSON calls.
pub const REST_BODY: usize = 256 * 1024;
/// Largest body of the Event API.
pub const EVENTS_BODY: usize = grantry_core::platform::events::MAX_BODY;
/// Largest body of the console's forms.
pub const CONSOLE_BODY: usize = 64 * 1024;
/// The admin API's JSON bodies (docs/architecture.md, the admin API).
pub const ADMIN_BODY: usize = 64 * 1024;
/// Largest body of any other route (none of them reads one).
pub const OTHER_BODY: usize = 16 * 1024;

/// hyper's own header count limit, which it checks without allocating.
const HYPER_MAX_HEADERS: usize = 100;

/// The limits of each connection and of the server as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; beyond this the server stops accepting until one closes
    /// (new connections wait in the listen backlog).
    pub max_connections: usize,
    /// Headers in one request; more are answered 431.
    pub max_headers: usize,
    /// Bytes of the request line and headers together; more are answered 431.
    pub max_header_bytes: usize,
    /// Time a client has to send a request's line and headers, counted from when the server
    /// starts waiting for them (so an idle keep-alive connection closes after it too).
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once the server waits for it; a body that
    /// takes longer is refused with 408 in the protocol's format.
    pub body_read_timeout: Duration,
    /// At shutdown, how long requests already being served may take to finish before their
    /// connections are closed.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_headers: HYPER_MAX_HEADERS,
            max_header_bytes: 32 * 1024,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Smallest `max_header_bytes` accepted: room for a request line, a `Host` and an
    /// `Authorization` header.
    pub const MIN_HEADER_BYTES: usize = 1024;

    /// Says what is wrong with a limit, naming its configuration key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("http.max_connections must be at least 1".into());
        }
        if self.max_headers == 0 {
            return Err("http.max_headers must be at least 1".into());
        }
        if self.max_header_bytes < Self::MIN_HEADER_BYTES {
            return Err(format!(
                "http.max_header_bytes must be at least {}",
                Self::MIN_HEADER_BYTES
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err("http.header_read_timeout must be longer than 0s".into());
        }
        if self.body_read_timeout.is_zero() {
            return Err("http.body_read_timeout must be longer than 0s".into());
        }
        if self.drain_timeout.is_zero() {
            return Err("http.drain_timeout must be longer than 0s".into());
        }
        Ok(())
    }

    /// The HTTP/1.1 connection settings these limits ask for.
    pub(crate) fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(hyper_util::rt::TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(self.header_read_timeout)
            .max_header_size(self.max_header_bytes);
        // Any other count makes hyper allocate the header array per request.
        if self.max_headers != HYPER_MAX_HEADERS {
            b.max_headers(self.max_headers);
        }
        b
    }
}

/// A body read past [`Limits::body_read_timeout`].
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails with [`BodyTimeout`] once it has kept the server waiting for
/// `timeout` in all. The timer starts the first time the body is not ready, so a body that
/// arrives with its headers costs no timer.
pub(crate) struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> DeadlineBody<B> {
    pub(crate) fn new(inner: B, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            timeout,
            deadline: None,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
