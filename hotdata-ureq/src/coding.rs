//! Compressed answers ([`SendOptions::decompress`]) on ureq.
//!
//! A request the core marks `decompress` is sent with `Accept-Encoding: gzip, deflate` and
//! its body decoded here, with flate2 (feature `gzip`): `gzip` (and `x-gzip`) and `deflate`
//! (zlib, as RFC 9110 defines it). Any other request gets no `Accept-Encoding` from this
//! crate and its body is passed through as it arrived, `Content-Encoding` included.
//!
//! ureq decodes bodies itself when its own `gzip` (or `brotli`) feature is on, whatever the
//! request asked for, and leaves `Content-Encoding` in the head. This crate does not turn
//! those features on, but anything else in a build may (ureq's default features include
//! `gzip`), and Cargo then turns them on for this crate's ureq too. Which codings ureq
//! decodes is therefore found out once per process ([`ureq_decodes`]), from an exchange
//! with an in-memory connection (no socket): a body ureq has decoded is not decoded again,
//! and its `Content-Encoding` is removed from the head, so the head always describes the
//! body handed on. In such a build a non-`decompress` answer in those codings arrives
//! decoded rather than untouched (nothing else can be done: ureq offers no way to read the
//! bytes as sent).
//!
//! [`SendOptions::decompress`]: hotdata_core::SendOptions::decompress

use std::io::Read;
use std::sync::OnceLock;

use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};

/// What a `decompress` request accepts.
pub(crate) const ACCEPT_ENCODING: http::HeaderValue = http::HeaderValue::from_static("gzip, deflate");

/// The content codings this build's ureq decodes on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UreqDecodes {
    /// `Content-Encoding: gzip` (ureq's `gzip` feature).
    pub(crate) gzip: bool,
    /// `Content-Encoding: br` (ureq's `brotli` feature).
    pub(crate) br: bool,
}

/// The content codings this build's ureq decodes on its own, found out on first use.
pub(crate) fn ureq_decodes() -> UreqDecodes {
    static FOUND: OnceLock<UreqDecodes> = OnceLock::new();
    *FOUND.get_or_init(|| UreqDecodes { gzip: probe::decodes("gzip"), br: probe::decodes("br") })
}

/// The body of an answer, decoded if `decode` (the request was `decompress`) and it is in a
/// coding this crate decodes; `headers` lose `Content-Encoding` and `Content-Length` when
/// the body handed on is not the one they describe (decoded here or by ureq).
pub(crate) fn body<R: Read + Send + 'static>(
    headers: &mut HeaderMap,
    reader: R,
    decode: bool,
    ureq: UreqDecodes,
) -> Box<dyn Read + Send> {
    // The first `Content-Encoding` value, which is the one ureq reads, compared as ureq
    // compares it (exactly).
    let coding = headers.get(CONTENT_ENCODING).map(|v| v.as_bytes().to_vec());
    let Some(coding) = coding else { return Box::new(reader) };
    let several = headers.get_all(CONTENT_ENCODING).iter().count() > 1;
    let decoded_by_ureq = (ureq.gzip && coding == b"gzip") || (ureq.br && coding == b"br");
    if decoded_by_ureq {
        if !several {
            plain(headers);
        }
        return Box::new(reader);
    }
    if !decode || several {
        return Box::new(reader);
    }
    match decoder(&coding, reader) {
        Ok(decoded) => {
            plain(headers);
            decoded
        }
        Err(reader) => reader,
    }
}

/// The head of a body handed on decoded: no coding, and no length (the decoded length is
/// not known before the end).
fn plain(headers: &mut HeaderMap) {
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
}

/// A decoder of `coding` over `reader`, or `reader` back for a coding this crate does not
/// decode.
#[cfg(feature = "gzip")]
fn decoder<R: Read + Send + 'static>(
    coding: &[u8],
    reader: R,
) -> Result<Box<dyn Read + Send>, Box<dyn Read + Send>> {
    let coding = String::from_utf8_lossy(coding);
    match coding.trim().to_ascii_lowercase().as_str() {
        // Several gzip members in a row are one body (RFC 1952), as reqwest reads them.
        "gzip" | "x-gzip" => Ok(Box::new(flate2::read::MultiGzDecoder::new(reader))),
        "deflate" => Ok(Box::new(flate2::read::ZlibDecoder::new(reader))),
        _ => Err(Box::new(reader)),
    }
}

/// Without the `gzip` feature nothing is asked for, and nothing is decoded here.
#[cfg(not(feature = "gzip"))]
fn decoder<R: Read + Send + 'static>(
    _coding: &[u8],
    reader: R,
) -> Result<Box<dyn Read + Send>, Box<dyn Read + Send>> {
    Err(Box::new(reader))
}

/// The probe of what ureq decodes: one exchange over an in-memory connection.
mod probe {
    use std::io::Read;
    use std::net::SocketAddr;

    use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
    use ureq::unversioned::transport::{
        Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
    };

    /// Bytes that are in no content coding.
    const BODY: &[u8] = b"plain bytes, in no coding";

    /// Whether ureq decodes a body in `coding`: the answer says `Content-Encoding: <coding>`
    /// over bytes that are not in it. Passed through, they read back as sent; decoded, the
    /// read fails or returns something else. `false` if the exchange itself fails (it
    /// cannot: nothing leaves the process).
    pub(super) fn decodes(coding: &str) -> bool {
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-encoding: {coding}\r\ncontent-length: {}\r\n\r\n",
            BODY.len()
        )
        .into_bytes();
        answer.extend_from_slice(BODY);
        let config = ureq::Agent::config_builder().http_status_as_error(false).build();
        let agent = ureq::Agent::with_parts(config, Canned(answer), Loopback);
        let Ok(response) = agent.get("http://127.0.0.1/").call() else { return false };
        let mut read = Vec::new();
        match response.into_body().into_reader().read_to_end(&mut read) {
            Ok(_) => read != BODY,
            Err(_) => true,
        }
    }

    /// Connects to [`CannedTransport`]s answering with these bytes.
    #[derive(Debug)]
    struct Canned(Vec<u8>);

    impl Connector for Canned {
        type Out = CannedTransport;

        fn connect(&self, _: &ConnectionDetails, _: Option<()>) -> Result<Option<Self::Out>, ureq::Error> {
            Ok(Some(CannedTransport { buffers: LazyBuffers::new(4096, 4096), answer: self.0.clone() }))
        }
    }

    /// A connection that swallows the request and answers with canned bytes.
    #[derive(Debug)]
    struct CannedTransport {
        buffers: LazyBuffers,
        /// What is left to answer.
        answer: Vec<u8>,
    }

    impl Transport for CannedTransport {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }

        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            Ok(())
        }

        fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
            let buf = self.buffers.input_append_buf();
            let n = self.answer.len().min(buf.len());
            buf[..n].copy_from_slice(&self.answer[..n]);
            self.buffers.input_appended(n);
            self.answer.drain(..n);
            Ok(n > 0)
        }

        fn is_open(&mut self) -> bool {
            !self.answer.is_empty()
        }
    }

    /// Resolves any host to 127.0.0.1 without asking anyone (nothing connects to it).
    #[derive(Debug)]
    struct Loopback;

    impl Resolver for Loopback {
        fn resolve(
            &self,
            _: &ureq::http::Uri,
            _: &ureq::config::Config,
            _: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::from(([127, 0, 0, 1], 80)));
            Ok(addrs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(coding: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in coding {
            h.append(CONTENT_ENCODING, c.parse().unwrap());
        }
        h.insert(CONTENT_LENGTH, "7".parse().unwrap());
        h
    }

    fn read(mut r: Box<dyn Read + Send>) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).map(|_| out)
    }

    #[test]
    fn this_builds_ureq_decodes_nothing_on_its_own() {
        // The workspace turns on neither of ureq's decoding features.
        assert_eq!(ureq_decodes(), UreqDecodes::default());
    }

    #[test]
    fn a_body_ureq_decoded_loses_its_coding_and_is_not_decoded_again() {
        let ureq = UreqDecodes { gzip: true, br: true };
        for decode in [true, false] {
            for coding in ["gzip", "br"] {
                let mut h = head(&[coding]);
                let out = read(body(&mut h, &b"decoded"[..], decode, ureq)).unwrap();
                assert_eq!(out, b"decoded", "{coding}, decode {decode}");
                assert!(h.get(CONTENT_ENCODING).is_none() && h.get(CONTENT_LENGTH).is_none(), "{h:?}");
            }
        }
        // ureq matches the value exactly: `GZIP` it leaves alone, and so is it left here
        // unless decoding was asked for.
        let mut h = head(&["GZIP"]);
        assert_eq!(read(body(&mut h, &b"as sent"[..], false, ureq)).unwrap(), b"as sent");
        assert_eq!(h[CONTENT_ENCODING], "GZIP");
    }

    #[test]
    fn without_decompress_every_body_passes_through_with_its_head() {
        for coding in [&["gzip"][..], &["deflate"], &["br"], &["gzip", "deflate"]] {
            let before = head(coding);
            let mut h = before.clone();
            assert_eq!(
                read(body(&mut h, &b"\x1f\x8b bytes"[..], false, UreqDecodes::default())).unwrap(),
                b"\x1f\x8b bytes"
            );
            assert_eq!(h, before);
        }
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn with_decompress_gzip_and_deflate_are_decoded_and_the_rest_passes_through() {
        use std::io::Write;
        let text = b"{\"hello\": \"world\"}".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&text).unwrap();
        let zlib = zlib.finish().unwrap();
        for (coding, wire) in [("gzip", &gz), ("x-gzip", &gz), ("Gzip ", &gz), ("deflate", &zlib)] {
            let mut h = head(&[coding]);
            let out =
                read(body(&mut h, std::io::Cursor::new(wire.clone()), true, UreqDecodes::default())).unwrap();
            assert_eq!(out, text, "{coding}");
            assert!(h.get(CONTENT_ENCODING).is_none() && h.get(CONTENT_LENGTH).is_none(), "{coding}: {h:?}");
        }
        // Another coding, or several: as they came.
        for coding in [&["br"][..], &["gzip", "gzip"]] {
            let before = head(coding);
            let mut h = before.clone();
            let out =
                read(body(&mut h, std::io::Cursor::new(gz.clone()), true, UreqDecodes::default())).unwrap();
            assert_eq!(out, gz);
            assert_eq!(h, before);
        }
        // A body that is not what its head says fails as a read error (a broken body).
        let mut h = head(&["gzip"]);
        let e = read(body(&mut h, &b"not gzip at all"[..], true, UreqDecodes::default())).unwrap_err();
        assert!(
            matches!(e.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData),
            "{e:?}"
        );
    }
}
