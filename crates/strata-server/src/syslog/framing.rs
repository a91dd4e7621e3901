//! Syslog over TCP (RFC 6587): each message is either octet-counted
//! (`LEN SP MSG`) or ends at a newline, detected per message as rsyslog
//! and VictoriaLogs do: a message starting with a digit is counted, any
//! other ends at its newline (syslog messages start with `<`). A sender
//! may switch between the two on one connection.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The longest octet count read: 10 digits cover any length we accept.
const COUNT_DIGITS: usize = 10;

/// One message read from a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A message within the size limit.
    Message(Vec<u8>),
    /// A message of this many bytes, over the limit: read and dropped.
    Oversized(u64),
}

/// The next message of `reader`, at most `max` bytes kept; `None` at the
/// end of the stream. A message cut short by the end of the stream is
/// kept when newline-framed (senders often omit the last newline) and an
/// error when octet-counted (its length says it is incomplete).
pub async fn next_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> io::Result<Option<Frame>> {
    // Newlines, NULs (an old framing) and spaces between messages.
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(None);
        }
        let blank = buf
            .iter()
            .take_while(|b| matches!(b, b'\n' | b'\r' | b'\0' | b' '))
            .count();
        if blank == 0 {
            break;
        }
        reader.consume(blank);
    }
    let mut digits = Vec::new();
    while digits.len() <= COUNT_DIGITS {
        match peek(reader).await? {
            Some(b) if b.is_ascii_digit() => digits.push(b),
            Some(b' ') if !digits.is_empty() => {
                reader.consume(1);
                let count: u64 = std::str::from_utf8(&digits)
                    .expect("ASCII digits")
                    .parse()
                    .expect("at most ten digits fit u64");
                return counted(reader, count, max).await.map(Some);
            }
            _ => break,
        }
        reader.consume(1);
    }
    // Not a count: the digits read are the start of a line.
    line(reader, digits, max).await.map(Some)
}

/// The next byte, not consumed.
async fn peek<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<u8>> {
    Ok(reader.fill_buf().await?.first().copied())
}

async fn counted<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    count: u64,
    max: usize,
) -> io::Result<Frame> {
    if count > max as u64 {
        let skipped =
            tokio::io::copy(&mut (&mut *reader).take(count), &mut tokio::io::sink()).await?;
        if skipped < count {
            return Err(truncated(count, skipped));
        }
        return Ok(Frame::Oversized(count));
    }
    let mut message = vec![0; count as usize];
    match reader.read_exact(&mut message).await {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(truncated(count, 0)),
        other => other.map(|_| Frame::Message(message)),
    }
}

fn truncated(count: u64, read: u64) -> io::Error {
    let read = if read > 0 {
        format!(" after {read}")
    } else {
        String::new()
    };
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the stream ended inside an octet-counted message of {count} bytes{read}"),
    )
}

/// The rest of a newline-framed message that starts with `message`.
async fn line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    mut message: Vec<u8>,
    max: usize,
) -> io::Result<Frame> {
    let mut length = message.len() as u64;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            break;
        }
        let (taken, ended) = match memchr::memchr(b'\n', buf) {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        length += taken as u64;
        if length <= max as u64 {
            message.extend_from_slice(&buf[..taken]);
        }
        reader.consume(taken + usize::from(ended));
        if ended {
            break;
        }
    }
    if length > max as u64 {
        return Ok(Frame::Oversized(length));
    }
    if message.last() == Some(&b'\r') {
        message.pop();
    }
    Ok(Frame::Message(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(stream: &[u8], max: usize) -> (Vec<Frame>, Option<String>) {
        // A tiny buffer makes every frame straddle reads.
        let mut reader = tokio::io::BufReader::with_capacity(3, stream);
        let mut out = Vec::new();
        loop {
            match next_frame(&mut reader, max).await {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    fn message(text: &str) -> Frame {
        Frame::Message(text.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn counted_and_newline_messages_mix_on_one_stream() {
        let stream = b"11 <13>1 - a b\n<13>c d\r\n\n7 <14>x\ny 1999-is-not-a-count\n<15>last";
        let (got, error) = frames(stream, 100).await;
        assert_eq!(error, None);
        assert_eq!(
            got,
            [
                message("<13>1 - a b"),
                message("<13>c d"),
                message("<14>x\ny"),
                message("1999-is-not-a-count"),
                message("<15>last"),
            ]
        );
    }

    #[tokio::test]
    async fn oversized_messages_are_skipped_whole_and_reading_goes_on() {
        let stream = b"12 <13>12345678<13>ok\n<13>this line is too long\n<13>fine\n";
        let (got, error) = frames(stream, 10).await;
        assert_eq!(error, None);
        assert_eq!(
            got,
            [
                Frame::Oversized(12),
                message("<13>ok"),
                Frame::Oversized(25),
                message("<13>fine"),
            ]
        );
    }

    #[tokio::test]
    async fn a_count_longer_than_the_stream_is_an_error() {
        let (got, error) = frames(b"<13>a\n50 <13>short", 100).await;
        assert_eq!(got, [message("<13>a")]);
        assert!(error.unwrap().contains("octet-counted message of 50 bytes"));
    }
}
