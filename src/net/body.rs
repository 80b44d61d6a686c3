//! Reading a request body in bounded size *and* time. The header read timeout covers only
//! the headers: a client that declared a body and never sent it would otherwise hold its
//! connection slot (out of `max_connections`) for as long as it liked, before any identity
//! is checked. A body not read whole within the deadline is refused, and the connection,
//! whose body was not consumed, is closed by hyper after the answer.

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive within {0} ms; send it with the request")]
    Stalled(u128),
    #[error("the body could not be read: {0}")]
    Broken(String),
}

/// Reads `body` whole: at most `limit` bytes, all of them within `deadline`.
pub async fn read_bounded<B>(body: B, limit: usize, deadline: Duration) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::Stalled(deadline.as_millis())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge(limit))
        }
        Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
    }
}
