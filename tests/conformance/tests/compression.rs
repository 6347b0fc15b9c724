//! Compressed answers (`SendOptions::decompress`) on every transport, against a local server:
//! JSON calls ask for `gzip, deflate` and get the answer decoded (ureq, reqwest); the
//! bring-your-own-stack example ignores the flag and nothing is compressed; storage PUTs,
//! result downloads and Arrow queries carry no `Accept-Encoding` of a transport's, and an
//! answer to them that comes compressed anyway is handed on as it arrived.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hotdata_conformance::server::{Reply, TestServer};
use hotdata_core::models::{QueryRequest, ResultsFormatQuery};
use hotdata_core::upload::UploadOptions;
use hotdata_core::{
    AsyncTransport, BlockingTransport, Config, DynamicRequest, ErrorKind, RequestBody, SendOptions,
};
use serde_json::{Value, json};

/// The bring-your-own-stack example, which ignores `decompress`.
#[path = "../../../examples/hyper_transport.rs"]
mod hyper_transport;

const ASKED: &str = "gzip, deflate";

fn gzip(bytes: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap().into()
}

/// `deflate` as HTTP means it: zlib (RFC 9110 §8.4.1.2).
fn deflate(bytes: &[u8]) -> Bytes {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap().into()
}

fn encoded(coding: &str, bytes: &[u8]) -> Bytes {
    match coding {
        "gzip" => gzip(bytes),
        _ => deflate(bytes),
    }
}

fn respond(content_type: &str, coding: Option<&str>, body: Bytes) -> Reply {
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    if let Some(c) = coding {
        headers.push(("content-encoding".to_owned(), c.to_owned()));
    }
    Reply::Respond { status: 200, headers, body }
}

fn config(server: &TestServer) -> Config {
    Config::new("hd_key").with_workspace_id("ws_1").with_base_url(server.url())
}

/// A listing of `n` databases: large and repetitive, as JSON listings are.
fn listing(n: usize) -> Value {
    let databases: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("db_{i}"), "name": format!("database number {i}"), "created_at": "2026-01-01T00:00:00Z",
                        "default_catalog": "c", "default_schema": "s", "updated_at": "2026-01-01T00:00:00Z"}))
        .collect();
    json!({"databases": databases, "has_more": false})
}

/// `list_databases` through `backend`'s client.
fn list_databases(backend: &str, config: Config) -> Result<Value, hotdata_core::Error> {
    let request = DynamicRequest::new("list_databases").unwrap();
    match backend {
        "ureq" => hotdata_ureq::client(config).call(request).send(),
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let client = match backend {
                    "hyper" => hyper_transport::client(config),
                    _ => hotdata_reqwest::client(config),
                };
                client.call(request).await
            })
        }
    }
}

#[test]
fn json_calls_ask_for_gzip_and_deflate_and_get_the_answer_decoded() {
    let plain = listing(2_000).to_string();
    for coding in ["gzip", "deflate"] {
        let wire = encoded(coding, plain.as_bytes());
        assert!(wire.len() * 10 < plain.len(), "{coding}: {} of {} bytes", wire.len(), plain.len());
        for backend in ["ureq", "reqwest", "hyper"] {
            let (plain, wire) = (plain.clone(), wire.clone());
            // Compressed only when asked for, as a server does.
            let server = TestServer::start(move |seen, _| {
                let asked = seen.header("accept-encoding").is_some_and(|a| a.contains(coding));
                if asked {
                    respond("application/json", Some(coding), wire.clone())
                } else {
                    respond("application/json", None, Bytes::from(plain.clone()))
                }
            });
            let listed =
                list_databases(backend, config(&server)).unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert_eq!(listed["databases"].as_array().map(Vec::len), Some(2_000), "{backend} {coding}");
            assert_eq!(listed["databases"][1_999]["id"], "db_1999", "{backend} {coding}");
            let asked = server.seen()[0].header("accept-encoding").map(str::to_owned);
            match backend {
                "hyper" => assert_eq!(asked, None, "the example asks for nothing: nothing is compressed"),
                _ => assert_eq!(asked.as_deref(), Some(ASKED), "{backend}"),
            }
        }
    }
}

/// One exchange through `backend`'s own transport: the response head and the whole body.
fn exchange(
    backend: &str,
    request: http::Request<RequestBody>,
    options: SendOptions,
) -> (http::response::Parts, Bytes) {
    match backend {
        "ureq" => {
            let transport = hotdata_ureq::UreqTransport::new(Some(Duration::from_secs(5)));
            let (parts, body) = transport.send(request, &options).unwrap().into_parts();
            let mut all = Vec::new();
            for chunk in body {
                all.extend_from_slice(&chunk.unwrap());
            }
            (parts, all.into())
        }
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let transport = hotdata_reqwest::ReqwestTransport::new(Some(Duration::from_secs(5)));
                let (parts, body) = transport.send(request, &options).await.unwrap().into_parts();
                (parts, body.collect().await.unwrap())
            })
        }
    }
}

fn request(method: &str, url: String, body: &'static [u8]) -> http::Request<RequestBody> {
    let mut r = http::Request::builder().method(method).uri(url);
    if !body.is_empty() {
        r = r.header("content-length", body.len().to_string());
    }
    r.body(RequestBody::Bytes(Bytes::from_static(body))).unwrap()
}

fn timeout() -> SendOptions {
    SendOptions::with_timeout(Some(Duration::from_secs(20)))
}

#[test]
fn a_decoded_answer_loses_its_coding_and_length_and_another_coding_arrives_as_sent() {
    let plain = listing(50).to_string();
    for backend in ["ureq", "reqwest"] {
        for coding in ["gzip", "deflate"] {
            let wire = encoded(coding, plain.as_bytes());
            let server =
                TestServer::start(move |_, _| respond("application/json", Some(coding), wire.clone()));
            let (head, body) =
                exchange(backend, request("GET", server.url(), b""), timeout().with_decompress(true));
            assert_eq!(body, plain.as_bytes(), "{backend} {coding}");
            assert_eq!(head.headers.get("content-encoding"), None, "{backend} {coding}");
            assert_eq!(head.headers.get("content-length"), None, "{backend} {coding}: the wire's length");
            assert_eq!(server.seen()[0].header("accept-encoding"), Some(ASKED), "{backend}");
        }
        // A coding that was not asked for is not decoded: as it came, head and all.
        let server = TestServer::start(|_, _| {
            respond("application/json", Some("br"), Bytes::from_static(b"\x0b\x02"))
        });
        let (head, body) =
            exchange(backend, request("GET", server.url(), b""), timeout().with_decompress(true));
        assert_eq!(&body[..], b"\x0b\x02", "{backend}");
        assert_eq!(head.headers["content-encoding"], "br", "{backend}");
    }
}

#[test]
fn unmarked_requests_ask_for_nothing_and_get_the_body_as_sent() {
    let wire = gzip(b"a,b\n1,2\n");
    for backend in ["ureq", "reqwest"] {
        let streamed = timeout().with_body_idle_timeout(Some(Duration::from_secs(5)));
        let cases = [
            ("an API request", timeout(), "GET", &b""[..]),
            ("a streamed answer", streamed, "GET", b""),
            ("a storage PUT", timeout().for_storage(), "PUT", b"part bytes"),
        ];
        for (case, options, method, sent) in cases {
            let answer = wire.clone();
            // A server that compresses whatever it was asked (as some misconfigured ones do).
            let server = TestServer::start(move |_, _| respond("text/csv", Some("gzip"), answer.clone()));
            let url = format!("{}/bucket/key?X-Amz-Signature=abc", server.url());
            let (head, got) = exchange(backend, request(method, url, sent), options);
            assert_eq!(got, wire, "{backend}, {case}: the bytes as sent");
            assert_eq!(head.headers["content-encoding"], "gzip", "{backend}, {case}");
            assert_eq!(head.headers["content-length"], wire.len().to_string().as_str(), "{backend}, {case}");
            assert_eq!(server.seen()[0].header("accept-encoding"), None, "{backend}, {case}");
        }
    }
}

/// A server for the flows: an upload in one PUT (to itself), a CSV result that comes
/// gzip-compressed whatever was asked, and a query.
fn flows_server() -> TestServer {
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let url = base.clone();
    let server = TestServer::start(move |seen, _| {
        let path = seen.target.split('?').next().unwrap_or_default().to_owned();
        match (seen.method.as_str(), path.as_str()) {
            ("POST", "/v1/uploads") => Reply::json(
                201,
                json!({"upload_id": "up_1", "finalize_token": "tok", "headers": {}, "mode": "single",
                       "url": format!("{}/storage/single?X-Amz-Signature=abc", url.get().unwrap())}),
            ),
            ("PUT", "/storage/single") => Reply::status(200).header("etag", "\"e1\""),
            ("POST", "/v1/uploads/up_1/finalize") => Reply::json(
                200,
                json!({"upload_id": "up_1", "status": "finalized", "size_bytes": 4, "created_at": "2026-01-01T00:00:00Z"}),
            ),
            ("GET", "/v1/results/r1") => respond("text/csv", Some("gzip"), gzip(b"a,b\n1,2\n")),
            ("POST", "/v1/query") => respond("application/json", None, Bytes::from_static(b"{}")),
            _ => Reply::json(404, json!({"error": "no route"})),
        }
    });
    base.set(server.url()).unwrap();
    server
}

#[test]
fn storage_puts_downloads_and_arrow_queries_carry_no_accept_encoding_of_a_transport() {
    for backend in ["ureq", "reqwest"] {
        let server = flows_server();
        let config = config(&server);
        let download = match backend {
            "ureq" => {
                let c = hotdata_ureq::client(config);
                c.upload_file(b"a,b\n".to_vec(), UploadOptions::new()).unwrap();
                let _ = c.query_arrow(QueryRequest::new("select 1")).stream();
                c.results().download("r1", "db_1", ResultsFormatQuery::Csv).write_to(&mut Vec::new())
            }
            _ => {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    let c = hotdata_reqwest::client(config);
                    c.upload_file(b"a,b\n".to_vec(), UploadOptions::new()).await.unwrap();
                    let _ = c.query_arrow(QueryRequest::new("select 1")).stream().await;
                    c.results()
                        .download("r1", "db_1", ResultsFormatQuery::Csv)
                        .write_to(&mut Vec::new())
                        .await
                })
            }
        };
        // The gzip body the download did not ask for arrived as sent, and the core says so.
        let e = download.expect_err("a compressed download is refused");
        assert_eq!(e.kind(), ErrorKind::Decode, "{backend}: {e:?}");
        assert!(e.to_string().contains("`gzip`-encoded"), "{backend}: {e}");
        let seen: Vec<_> = server
            .seen()
            .into_iter()
            .map(|s| {
                (
                    format!("{} {}", s.method, s.target.split('?').next().unwrap()),
                    s.header("accept-encoding").map(str::to_owned),
                )
            })
            .collect();
        let asked = Some(ASKED.to_owned());
        let identity = Some("identity".to_owned());
        assert_eq!(
            seen,
            [
                ("POST /v1/uploads".to_owned(), asked.clone()),
                ("PUT /storage/single".to_owned(), None),
                ("POST /v1/uploads/up_1/finalize".to_owned(), asked),
                ("POST /v1/query".to_owned(), identity.clone()),
                ("GET /v1/results/r1".to_owned(), identity),
            ],
            "{backend}"
        );
    }
}
