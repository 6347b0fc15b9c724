//! What ureq puts on the wire for upload requests: a storage PUT carries no header the core
//! did not set (beyond `Host`), and a streaming body is sent as it is read, chunked when its
//! length is unknown. A one-shot local server records the raw request.

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;
use hotdata_core::{BlockingTransport, RequestBody, SendOptions, StreamingBody};
use hotdata_ureq::UreqTransport;

/// The header lines and the body of the request the server received.
type Seen = std::thread::JoinHandle<(Vec<String>, Vec<u8>)>;

/// Serves one request; returns its lower-cased header lines and its (de-chunked) body.
fn serve_once() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            headers.push(line);
        }
        let mut body = Vec::new();
        if headers.iter().any(|h| h == "transfer-encoding: chunked") {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(len) = headers.iter().find_map(|h| h.strip_prefix("content-length: ")) {
            body.resize(len.parse().unwrap(), 0);
            reader.read_exact(&mut body).unwrap();
        }
        let mut stream = stream;
        stream.write_all(b"HTTP/1.1 200 OK\r\netag: \"abc\"\r\ncontent-length: 0\r\n\r\n").unwrap();
        (headers, body)
    });
    (url, handle)
}

fn put(url: &str, body: RequestBody, len: Option<usize>) -> http::Request<RequestBody> {
    let mut builder = http::Request::builder().method("PUT").uri(url);
    if let Some(n) = len {
        builder = builder.header("content-length", n);
    }
    builder.body(body).unwrap()
}

fn options() -> SendOptions {
    let mut o = SendOptions::with_timeout(Some(Duration::from_secs(10)));
    o.connect_timeout = Some(Duration::from_secs(30));
    o
}

#[test]
fn a_storage_put_carries_only_what_the_core_set() {
    let (url, server) = serve_once();
    let transport = UreqTransport::new(Some(Duration::from_secs(5)));
    let body = RequestBody::Bytes(Bytes::from_static(b"part bytes"));
    let response = transport.send(put(&format!("{url}/part/1?sig=x"), body, Some(10)), &options()).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"abc\"");
    let (headers, body) = server.join().unwrap();
    assert_eq!(body, b"part bytes");
    let names: Vec<_> = headers[1..].iter().map(|h| h.split(':').next().unwrap().to_owned()).collect();
    assert_eq!(names, vec!["host", "content-length"], "{headers:?}");
}

#[test]
fn streaming_bodies_are_sent_as_read_chunked_when_the_length_is_unknown() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (url, server) = serve_once();
    let transport = UreqTransport::new(None);
    let body = RequestBody::Streaming(StreamingBody::from_reader(Cursor::new(data.clone()), None));
    transport.send(put(&url, body, None), &options()).unwrap();
    let (headers, got) = server.join().unwrap();
    assert!(headers.contains(&"transfer-encoding: chunked".to_owned()), "{headers:?}");
    assert_eq!(got, data);

    let (url, server) = serve_once();
    let body = RequestBody::Streaming(StreamingBody::from_reader(
        Cursor::new(data.clone()),
        Some(data.len() as u64),
    ));
    let sent = body.clone();
    transport.send(put(&url, body, Some(data.len())), &options()).unwrap();
    let (headers, got) = server.join().unwrap();
    assert!(headers.contains(&format!("content-length: {}", data.len())), "{headers:?}");
    assert_eq!(got, data);
    let again = transport.send(put(&url, sent, Some(data.len())), &options()).unwrap_err();
    assert_eq!(again.kind(), hotdata_core::TransportErrorKind::Request, "a streaming body is sent once");
}
