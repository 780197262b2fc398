//! Reading a body up to a cap: all of it, or, past the cap (or at trailers, or an error), a
//! body that sends what was read and then streams the rest, so nothing the handler wrote is
//! lost or held back.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::BoxError;
use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

/// A body read to its end within the cap, or one to pass on unread from where reading stopped.
pub(super) enum Collected<R> {
    Whole(Bytes),
    Partial(Replay<R>),
}

/// Reads `body` until its end or past `cap` bytes.
pub(super) async fn collect<R>(body: R, cap: usize) -> Collected<R>
where
    R: HttpBody<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut read: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    let stop = |read: Vec<Bytes>, error, rest| {
        Collected::Partial(Replay {
            frames: read.into_iter().map(Frame::data).collect(),
            error,
            rest: Some(rest),
        })
    };
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    len = len.saturating_add(data.len());
                    read.push(data);
                    if len > cap {
                        return stop(read, None, body);
                    }
                }
                Err(trailers) => {
                    let mut r = stop(read, None, body);
                    if let Collected::Partial(r) = &mut r {
                        r.frames.push_back(trailers);
                    }
                    return r;
                }
            },
            Some(Err(e)) => return stop(read, Some(e.into()), body),
        }
    }
    let whole = match read.len() {
        0 => Bytes::new(),
        1 => read.pop().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(len);
            for b in read {
                all.extend_from_slice(&b);
            }
            all.freeze()
        }
    };
    Collected::Whole(whole)
}

/// The frames read so far, then an error met while reading, then the rest of the body.
pub(super) struct Replay<R> {
    frames: VecDeque<Frame<Bytes>>,
    error: Option<BoxError>,
    rest: Option<Pin<Box<R>>>,
}

impl<R> HttpBody for Replay<R>
where
    R: HttpBody<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(frame) = this.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(e) = this.error.take() {
            this.rest = None;
            return Poll::Ready(Some(Err(e)));
        }
        match &mut this.rest {
            Some(rest) => rest
                .as_mut()
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(Into::into))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self
            .frames
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .sum();
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |r| r.size_hint());
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(read));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(read));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn stream(chunks: &'static [&'static [u8]]) -> Body {
        let s = futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, BoxError>(Bytes::from_static(c))),
        );
        Body::from_stream(s)
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_read_whole() {
        match collect(stream(&[b"ab", b"cd"]), 4).await {
            Collected::Whole(b) => assert_eq!(&b[..], b"abcd"),
            Collected::Partial(_) => panic!("within the cap"),
        }
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_passed_on_whole() {
        let Collected::Partial(replay) = collect(stream(&[b"ab", b"cd", b"ef"]), 3).await else {
            panic!("past the cap");
        };
        let all = Body::new(replay).collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abcdef");
    }
}
