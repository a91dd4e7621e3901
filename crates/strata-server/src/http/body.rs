//! Request bodies: read up to a limit, then decompressed (gzip or zstd, by
//! `Content-Encoding`) up to the same limit, so that neither a huge body
//! nor a small compressed bomb takes more memory than the limit.

use std::io::Read;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::json_error;

/// The longest pause allowed inside a request body.
const BODY_IDLE: Duration = Duration::from_secs(30);

/// Why a body cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit, before or after decompression (413).
    TooLarge(usize),
    /// A `Content-Encoding` not supported (415).
    Encoding(String),
    /// Not valid data of its encoding, or cut off (400).
    Undecodable(String),
    /// The client stopped sending in the middle of the body (408).
    Stalled,
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        match self {
            BodyError::TooLarge(limit) => json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the body is larger than the limit of {limit} bytes (after decompression); send smaller batches"
                ),
            ),
            BodyError::Encoding(encoding) => json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!(
                    "Content-Encoding `{encoding}` is not supported: send identity, gzip or zstd"
                ),
            ),
            BodyError::Undecodable(why) => json_error(StatusCode::BAD_REQUEST, &why),
            BodyError::Stalled => json_error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body stopped arriving for {} s; send it at once",
                    BODY_IDLE.as_secs()
                ),
            ),
        }
    }
}

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Identity,
    /// gzip (one or more members).
    Gzip,
    /// zstd.
    Zstd,
}

/// The body's encoding, from `Content-Encoding`.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let name = value.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    match name.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "zstd" => Ok(Encoding::Zstd),
        _ => Err(BodyError::Encoding(name)),
    }
}

/// Reads `body` whole, refusing it once it passes `limit` bytes or when
/// nothing of it arrives for `BODY_IDLE` (a client dripping a body holds
/// a connection slot, not the server).
pub async fn read(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    // Sized once from Content-Length (within the limit): growing a large
    // buffer step by step copies it and faults in fresh pages each time.
    let announced = HttpBody::size_hint(&body).exact().unwrap_or(0) as usize;
    let mut bytes = BytesMut::with_capacity(announced.min(limit));
    let mut stream = body.into_data_stream();
    loop {
        let next = tokio::time::timeout(BODY_IDLE, stream.next()).await;
        let Some(chunk) = next.map_err(|_| BodyError::Stalled)? else {
            break;
        };
        let chunk =
            chunk.map_err(|e| BodyError::Undecodable(format!("cannot read the body: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}

/// `raw` decompressed, refused once it passes `limit` bytes.
pub fn decode(raw: Bytes, encoding: Encoding, limit: usize) -> Result<Bytes, BodyError> {
    let reader: Box<dyn Read> = match encoding {
        Encoding::Identity => return Ok(raw),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&raw[..])),
        Encoding::Zstd => Box::new(
            zstd::stream::read::Decoder::new(&raw[..])
                .map_err(|e| BodyError::Undecodable(format!("cannot read the zstd body: {e}")))?,
        ),
    };
    let mut decoded = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|e| {
            BodyError::Undecodable(format!("cannot decompress the {encoding:?} body: {e}"))
        })?;
    if decoded.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(decoded.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap().into()
    }

    #[test]
    fn bodies_decode_within_the_limit() {
        let text = b"{\"a\":1}\n".repeat(100);
        let zstd: Bytes = zstd::encode_all(&text[..], 1).unwrap().into();
        for (raw, encoding) in [
            (Bytes::from(text.clone()), Encoding::Identity),
            (gzip(&text), Encoding::Gzip),
            (zstd, Encoding::Zstd),
        ] {
            assert_eq!(decode(raw, encoding, text.len()).unwrap(), text);
        }
    }

    #[test]
    fn a_compressed_bomb_stops_at_the_limit_and_garbage_is_named() {
        let bomb = gzip(&vec![b'x'; 10 << 20]);
        assert!(bomb.len() < 100 << 10);
        assert_eq!(
            decode(bomb, Encoding::Gzip, 1 << 20),
            Err(BodyError::TooLarge(1 << 20))
        );
        let garbage = decode(Bytes::from_static(b"not gzip"), Encoding::Gzip, 100);
        assert!(matches!(garbage, Err(BodyError::Undecodable(why)) if why.contains("Gzip")));
    }

    #[test]
    fn encodings_are_read_from_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(encoding(&headers), Ok(Encoding::Identity));
        headers.insert(header::CONTENT_ENCODING, "GZIP".parse().unwrap());
        assert_eq!(encoding(&headers), Ok(Encoding::Gzip));
        headers.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert_eq!(encoding(&headers), Err(BodyError::Encoding("br".into())));
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_while_read() {
        assert_eq!(read(Body::from("12345"), 5).await.unwrap(), "12345");
        assert_eq!(
            read(Body::from("123456"), 5).await,
            Err(BodyError::TooLarge(5))
        );
    }
}
