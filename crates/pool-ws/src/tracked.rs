//! `Tracked`: the TCP stream under a pooled WebSocket. It follows the frame
//! boundaries of what it reads, so that a checkout can tell without reading
//! that nothing is waiting for it (`WsConnection::drain`).
//!
//! Why: the checkout must drop what arrived while the connection was idle,
//! and the only way to ask tungstenite is one more read, which costs about
//! half of what a lease adds to a round trip (docs/benchmarks.md, "ws").
//! Two places can hold such a message: the socket (tokio's read readiness
//! says whether anything came since the last short read) and tungstenite's
//! read buffer (bytes read together with the last reply), which has no
//! accessor. The second is known here: every message whose frames were read
//! from the socket, counted against the messages tungstenite handed out,
//! with the read ending at a frame boundary, means its buffer holds nothing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The TCP stream of one pooled WebSocket.
#[derive(Debug)]
pub(crate) struct Tracked {
    tcp: TcpStream,
    /// `None` under TLS, where the bytes read here are ciphertext.
    frames: Option<Frames>,
}

impl Tracked {
    pub(crate) fn new(tcp: TcpStream, tls: bool) -> Self {
        let frames = (!tls).then(Frames::default);
        Tracked { tcp, frames }
    }

    /// Whether nothing is waiting to be read, given that `handed_out`
    /// messages were taken from the WebSocket: all messages read from the
    /// socket were handed out, the last read ended at a frame boundary, and
    /// the socket has had no data since its last short read. `false` when it
    /// cannot tell (TLS, a partial frame, a read that filled the buffer).
    ///
    /// It shares the runtime's view of the socket with a read: data the
    /// kernel holds but the runtime has not yet seen is missed by both.
    pub(crate) fn is_quiet(&self, handed_out: u64) -> bool {
        let Some(frames) = &self.frames else {
            return false;
        };
        if !frames.at_boundary() || frames.messages != handed_out {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        self.tcp.poll_read_ready(&mut cx).is_pending()
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(frames)) = (&r, &mut this.frames) {
            frames.feed(&buf.filled()[before..]);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Where the bytes read so far end: in the handshake's HTTP response, in a
/// frame header or in a payload; and how many messages they completed.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    at: At,
    /// Messages complete in what was read: every control frame, and every
    /// data frame with FIN set (the end of a message, fragmented or not).
    messages: u64,
}

#[derive(Debug)]
enum At {
    /// In the handshake's response: how much of its closing CRLF CRLF was seen.
    Response(usize),
    /// In a frame header: its bytes so far (at most 14).
    Header { bytes: [u8; 14], len: usize },
    /// In a payload: the bytes still to come; whether the frame ends a message.
    Payload { left: u64, ends_message: bool },
}

impl Default for At {
    fn default() -> Self {
        At::Response(0)
    }
}

const NEXT_HEADER: At = At::Header {
    bytes: [0; 14],
    len: 0,
};

impl Frames {
    fn at_boundary(&self) -> bool {
        matches!(self.at, At::Header { len: 0, .. })
    }

    /// Follows `data`, the next bytes read from the socket.
    fn feed(&mut self, mut data: &[u8]) {
        while let Some((&first, rest)) = data.split_first() {
            match &mut self.at {
                At::Response(seen) => {
                    // "\r\n\r\n" has no proper prefix that is also a suffix
                    // other than "\r": a mismatch restarts at 0 or 1.
                    *seen = match (b"\r\n\r\n"[*seen] == first, first) {
                        (true, _) => *seen + 1,
                        (false, b'\r') => 1,
                        (false, _) => 0,
                    };
                    data = rest;
                    if *seen == 4 {
                        self.at = NEXT_HEADER;
                    }
                }
                At::Header { bytes, len } => {
                    bytes[*len] = first;
                    *len += 1;
                    data = rest;
                    if let Some((payload, ends_message)) = header(&bytes[..*len]) {
                        self.at = At::Payload {
                            left: payload,
                            ends_message,
                        };
                        self.end_of_payload();
                    }
                }
                At::Payload { left, .. } => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    data = &data[n as usize..];
                    self.end_of_payload();
                }
            }
        }
    }

    /// At the end of a payload, counts the message it ended and moves on to
    /// the next header.
    fn end_of_payload(&mut self) {
        if let At::Payload {
            left: 0,
            ends_message,
        } = self.at
        {
            self.messages += u64::from(ends_message);
            self.at = NEXT_HEADER;
        }
    }
}

/// A frame header's payload length and whether the frame ends a message, once
/// `bytes` holds all of the header (RFC 6455, 5.2).
fn header(bytes: &[u8]) -> Option<(u64, bool)> {
    let [b0, b1, ..] = *bytes else {
        return None;
    };
    let (fin, control) = (b0 & 0x80 != 0, b0 & 0x08 != 0);
    let extended = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let masked = if b1 & 0x80 != 0 { 4 } else { 0 };
    if bytes.len() < 2 + extended + masked {
        return None;
    }
    let payload = match extended {
        0 => u64::from(b1 & 0x7f),
        _ => bytes[2..2 + extended]
            .iter()
            .fold(0, |n, &b| (n << 8) | u64::from(b)),
    };
    Some((payload, fin || control))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server-to-client frame: FIN or not, an opcode, a payload.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n < 65536 => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n";

    /// The state after feeding `bytes` in pieces of `step` bytes.
    fn fed(bytes: &[u8], step: usize) -> Frames {
        let mut frames = Frames::default();
        for piece in bytes.chunks(step) {
            frames.feed(piece);
        }
        frames
    }

    #[test]
    fn counts_messages_and_boundaries_however_the_reads_split() {
        let mut stream = RESPONSE.to_vec();
        stream.extend(frame(true, 0x1, b"hello")); // text
        stream.extend(frame(true, 0x9, b"")); // ping, empty
        stream.extend(frame(false, 0x2, &[7; 300])); // binary, first fragment
        stream.extend(frame(true, 0xA, b"pong")); // a pong between fragments
        stream.extend(frame(false, 0x0, &[]));
        stream.extend(frame(true, 0x0, &[8; 70_000])); // the last fragment
        for step in [1, 2, 3, 7, 13, 64, 4096, stream.len()] {
            let frames = fed(&stream, step);
            assert_eq!(frames.messages, 4, "step {step}");
            assert!(frames.at_boundary(), "step {step}");
        }
    }

    #[test]
    fn a_cut_anywhere_inside_a_frame_is_not_a_boundary() {
        let mut stream = RESPONSE.to_vec();
        let first_frame = stream.len();
        stream.extend(frame(true, 0x1, &[b'a'; 200]));
        for cut in first_frame + 1..stream.len() {
            let frames = fed(&stream[..cut], 5);
            assert!(!frames.at_boundary(), "cut at {cut}");
            assert_eq!(frames.messages, 0, "cut at {cut}");
        }
        assert!(fed(&stream[..first_frame], 5).at_boundary());
    }

    #[test]
    fn the_handshake_response_is_not_a_frame() {
        // Before its blank line, nothing is a boundary, whatever it holds.
        let frames = fed(b"HTTP/1.1 101 OK\r\nX: \r\r\n\x81\x00\r\n", 1);
        assert!(!frames.at_boundary());
        assert_eq!(frames.messages, 0);
        let frames = fed(b"HTTP/1.1 101 OK\r\nX: \r\r\n\r\n\x81\x00", 1);
        assert!(frames.at_boundary());
        assert_eq!(frames.messages, 1);
    }

    #[test]
    fn a_masked_header_is_followed_to_its_end() {
        let mut f = vec![0x81, 0x80 | 3, 1, 2, 3, 4];
        f.extend_from_slice(b"abc");
        let mut stream = RESPONSE.to_vec();
        stream.extend(&f);
        assert!(fed(&stream, 1).at_boundary());
        assert!(!fed(&stream[..stream.len() - 1], 1).at_boundary());
    }
}
