//! Storage requests (part PUTs to presigned URLs, marked `SendOptions::storage`) on both
//! native backends: a caller's own HTTP client (reqwest `with_client`, ureq `with_agent`)
//! never reaches storage with its defaults, and no error text carries a presigned URL's
//! query (its signature).

use std::time::Duration;

use bytes::Bytes;
use hotdata_conformance::faults::{
    Exchange, RawRequest, RawServer, Script, exchange_async, exchange_blocking,
};
use hotdata_core::{AsyncTransport, BlockingTransport, RequestBody, SendOptions, TransportError};

const CALLER_AUTH: &str = "Bearer caller-secret-token";
const CALLER_COOKIE: &str = "session=caller-cookie";
const CALLER_AGENT: &str = "caller-agent/1.0";

/// A reqwest client as a caller may configure one: a default `Authorization` and `Cookie`,
/// its own user agent.
fn callers_reqwest_client() -> reqwest::Client {
    // reqwest is built here without a crypto provider of its own, as the SDK's is.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, CALLER_AUTH.parse().unwrap());
    headers.insert(reqwest::header::COOKIE, CALLER_COOKIE.parse().unwrap());
    reqwest::Client::builder().default_headers(headers).user_agent(CALLER_AGENT).build().unwrap()
}

/// A ureq agent as a caller may configure one: its own `User-Agent`, `Accept` and
/// `Accept-Encoding`, and a middleware adding `Authorization` and `Cookie` to every request
/// without them (ureq's way to default headers).
fn callers_ureq_agent() -> ureq::Agent {
    fn defaults(
        mut request: http::Request<ureq::SendBody>,
        next: ureq::middleware::MiddlewareNext,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        // Defaults: set where the request has none (as reqwest's default headers are).
        let headers = request.headers_mut();
        headers.entry("authorization").or_insert(CALLER_AUTH.parse().unwrap());
        headers.entry("cookie").or_insert(CALLER_COOKIE.parse().unwrap());
        next.handle(request)
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(CALLER_AGENT)
        .accept("application/x-caller")
        .accept_encoding("gzip")
        .middleware(defaults)
        .build();
    ureq::Agent::new_with_config(config)
}

fn put(url: &str) -> http::Request<RequestBody> {
    http::Request::builder()
        .method("PUT")
        .uri(url)
        .header("content-length", "10")
        .body(RequestBody::Bytes(Bytes::from_static(b"part bytes")))
        .unwrap()
}

fn get(url: &str) -> http::Request<RequestBody> {
    http::Request::builder().method("GET").uri(url).body(RequestBody::Bytes(Bytes::new())).unwrap()
}

fn storage() -> SendOptions {
    let mut options = SendOptions::with_timeout(Some(Duration::from_secs(20))).for_storage();
    options.connect_timeout = Some(Duration::from_secs(30));
    options
}

fn api() -> SendOptions {
    SendOptions::with_timeout(Some(Duration::from_secs(20)))
}

/// Sends `request` through a reqwest transport over the caller's client.
fn send_reqwest(
    transport: &hotdata_reqwest::ReqwestTransport,
    request: http::Request<RequestBody>,
    options: SendOptions,
) -> Result<Bytes, TransportError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move { transport.send(request, &options).await?.into_body().collect().await })
}

/// Sends `request` through a ureq transport over the caller's agent.
fn send_ureq(
    transport: &hotdata_ureq::UreqTransport,
    request: http::Request<RequestBody>,
    options: SendOptions,
) -> Result<Bytes, TransportError> {
    let response = transport.send(request, &options)?;
    let mut body = Vec::new();
    for chunk in response.into_body() {
        body.extend_from_slice(&chunk?);
    }
    Ok(body.into())
}

/// What storage saw: the core's `Content-Length` and the transport's `Host`, on reqwest
/// the `Accept: */*` it adds to every request without one, on ureq `Expect: 100-continue`
/// (see `a_storage_put_refused_from_its_head_is_that_answer_not_a_broken_pipe`); nothing
/// of the caller.
fn assert_bare(backend: &str, seen: &RawRequest) {
    for name in ["authorization", "cookie", "user-agent", "accept-encoding"] {
        assert_eq!(seen.header(name), None, "{backend}: the caller's {name} reached storage: {seen:?}");
    }
    let expected: &[&str] = if backend == "reqwest" {
        &["accept", "content-length", "host"]
    } else {
        &["content-length", "expect", "host"]
    };
    assert_eq!(seen.names(), expected, "{backend}: {seen:?}");
    if backend == "reqwest" {
        assert_eq!(seen.header("accept"), Some("*/*"), "{backend}");
    }
    assert_eq!(seen.body, b"part bytes", "{backend}");
}

/// The caller's defaults did arrive on a request that is not for storage: the caller's
/// client is still the one API requests use.
fn assert_callers(backend: &str, seen: &RawRequest) {
    assert_eq!(seen.header("authorization"), Some(CALLER_AUTH), "{backend}: {seen:?}");
    assert_eq!(seen.header("cookie"), Some(CALLER_COOKIE), "{backend}: {seen:?}");
    assert_eq!(seen.header("user-agent"), Some(CALLER_AGENT), "{backend}: {seen:?}");
}

#[test]
fn a_callers_client_never_reaches_storage() {
    let ok = || Script::Respond(200, vec![("etag".into(), "\"abc\"".into())]);

    let server = RawServer::start(ok());
    let transport = hotdata_reqwest::ReqwestTransport::with_client(callers_reqwest_client());
    send_reqwest(&transport, put(&format!("{}/bucket/part?X-Amz-Signature=abc", server.url())), storage())
        .unwrap();
    send_reqwest(&transport, get(&format!("{}/v1/workspaces", server.url())), api()).unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_bare("reqwest", &seen[0]);
    assert_callers("reqwest", &seen[1]);

    let server = RawServer::start(ok());
    let transport = hotdata_ureq::UreqTransport::with_agent(callers_ureq_agent());
    send_ureq(&transport, put(&format!("{}/bucket/part?X-Amz-Signature=abc", server.url())), storage())
        .unwrap();
    send_ureq(&transport, get(&format!("{}/v1/workspaces", server.url())), api()).unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_bare("ureq", &seen[0]);
    assert_callers("ureq", &seen[1]);
    assert_eq!(seen[1].header("accept"), Some("application/x-caller"), "ureq: {:?}", seen[1]);
}

/// A presigned URL's query: every value carries `SECRET`.
const SIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDSECRET%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=SECRET0123456789abcdef0123456789abcdef";

/// `Display` and `Debug` of the error, of every error in its source chain, and of the
/// core's `Error` made from it.
fn all_text(e: TransportError) -> String {
    let mut text = format!("{e}\n{e:?}\n");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    let e = hotdata_core::Error::transport(e);
    text.push_str(&format!("{e}\n{e:?}\n"));
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    text
}

/// The failure of a storage PUT to `url` on `backend` (own transport), or of reading its
/// answer's body; `between` runs once the head has arrived.
fn storage_failure(backend: &str, url: &str, options: SendOptions, between: impl FnOnce()) -> TransportError {
    let request = put(url);
    match backend {
        "ureq" => {
            let transport = hotdata_ureq::UreqTransport::new(Some(Duration::from_secs(5)));
            let response = match transport.send(request, &options) {
                Ok(r) => r,
                Err(e) => return e,
            };
            between();
            let failed = response.into_body().find_map(Result::err);
            failed.unwrap_or_else(|| panic!("{backend}: {url} did not fail"))
        }
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let transport = hotdata_reqwest::ReqwestTransport::new(Some(Duration::from_secs(5)));
                let response = match transport.send(request, &options).await {
                    Ok(r) => r,
                    Err(e) => return e,
                };
                between();
                response.into_body().collect().await.expect_err("the body fails")
            })
        }
    }
}

#[test]
fn no_error_text_carries_a_presigned_urls_query() {
    for backend in ["ureq", "reqwest"] {
        let mut cases = Vec::new();

        let server = RawServer::start(Script::ResetBeforeResponse);
        let url = format!("{}/bucket/key?{SIGNED_QUERY}", server.url());
        cases.push(("reset before any response", storage_failure(backend, &url, storage(), || {})));

        let url = format!("{}/bucket/key?{SIGNED_QUERY}", hotdata_conformance::faults::refused_url());
        cases.push(("refused", storage_failure(backend, &url, storage(), || {})));

        let server = RawServer::start(Script::ResetMidBody);
        let url = format!("{}/bucket/key?{SIGNED_QUERY}", server.url());
        cases.push(("reset mid-body", storage_failure(backend, &url, storage(), || server.release())));

        let server = RawServer::start(Script::StallBody);
        let url = format!("{}/bucket/key?{SIGNED_QUERY}", server.url());
        let mut short = storage();
        short.timeout = Some(Duration::from_millis(300));
        cases.push(("stalled body", storage_failure(backend, &url, short, || {})));

        let url = format!("ftp://127.0.0.1:1/bucket/key?{SIGNED_QUERY}");
        cases.push(("unsupported scheme", storage_failure(backend, &url, storage(), || {})));

        for (case, e) in cases {
            let kind = e.kind();
            if backend == "reqwest" && case != "stalled body" && case != "reset mid-body" {
                // reqwest's error keeps its type, with the URL redacted rather than dropped.
                let reqwest = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<reqwest::Error>());
                let url = reqwest.and_then(reqwest::Error::url).map(|u| u.to_string());
                assert_eq!(url.as_deref().map(|u| u.ends_with("/bucket/key")), Some(true), "{case}: {e:?}");
            }
            let text = all_text(e);
            assert!(!text.contains("SECRET"), "{backend}, {case} ({kind:?}): the query leaked:\n{text}");
            assert!(!text.contains("X-Amz"), "{backend}, {case} ({kind:?}): the query leaked:\n{text}");
        }
    }
}

/// Uploads `data` through a client over the caller's own HTTP client on `backend`.
fn upload_over_callers_client(
    backend: &str,
    config: hotdata_core::Config,
    data: Vec<u8>,
) -> Result<(), hotdata_core::upload::UploadError> {
    use hotdata_core::upload::{PartRetryPolicy, RoundPolicy, UploadOptions};
    use std::sync::Arc;
    let options = UploadOptions::new().part_retry(PartRetryPolicy::none()).rounds(RoundPolicy::none());
    match backend {
        "ureq" => {
            let transport = hotdata_ureq::UreqTransport::with_agent(callers_ureq_agent());
            let runtime = hotdata_ureq::StdRuntime::new();
            let client =
                hotdata_core::BlockingClient::new(config, Arc::new(transport), Arc::new(runtime), "ureq");
            client.upload_file(data, options).map(drop)
        }
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let transport = hotdata_reqwest::ReqwestTransport::with_client(callers_reqwest_client());
                let runtime = hotdata_reqwest::TokioRuntime::new();
                let client =
                    hotdata_core::AsyncClient::new(config, Arc::new(transport), Arc::new(runtime), "reqwest");
                client.upload_file(data, options).await.map(drop)
            })
        }
    }
}

/// End to end, through the upload machine (which marks its PUTs as storage requests): over
/// a caller's own client, storage sees none of the client's defaults, and an upload whose
/// storage PUT is reset fails with an error whose whole chain never shows the URL's signature.
#[test]
fn uploads_over_a_callers_client_keep_storage_clean_and_signatures_out_of_errors() {
    use hotdata_emulator::{Emulator, Fault, FaultRule, Target};
    for backend in ["ureq", "reqwest"] {
        let emulator = Emulator::builder().start().expect("the emulator starts");
        let config = hotdata_core::Config::new(emulator.api_key())
            .with_workspace_id(emulator.workspace_id())
            .with_base_url(emulator.base_url());
        upload_over_callers_client(backend, config.clone(), vec![7; 1000]).expect("the upload succeeds");
        let puts: Vec<_> = emulator.requests().into_iter().filter(|r| r.operation == "storage_put").collect();
        assert!(!puts.is_empty(), "{backend}");
        for put in &puts {
            assert!(!put.had_authorization, "{backend}: {put:?}");
            for name in ["cookie", "user-agent", "accept-encoding"] {
                assert_eq!(put.header(name), None, "{backend}: the caller's {name} reached storage: {put:?}");
            }
        }

        let emulator = Emulator::builder()
            .fault(FaultRule::new(Target::Operation("storage_put".into()), Fault::Reset).always())
            .start()
            .expect("the emulator starts");
        let config = hotdata_core::Config::new(emulator.api_key())
            .with_workspace_id(emulator.workspace_id())
            .with_base_url(emulator.base_url());
        let err = upload_over_callers_client(backend, config, vec![7; 1000]).expect_err("storage resets");
        let put =
            emulator.requests().into_iter().find(|r| r.operation == "storage_put").expect("a storage PUT");
        let signature = put.uri.split("X-Signature=").nth(1).expect("a signed URL").to_owned();
        assert!(signature.len() >= 8, "{put:?}");
        let mut text = format!("{err}\n{err:?}\n");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text.push_str(&format!("{s}\n{s:?}\n"));
            source = s.source();
        }
        assert!(!text.contains(&signature), "{backend}: the signature leaked:\n{text}");
        assert!(!text.contains("X-Signature"), "{backend}: the query leaked:\n{text}");
    }
}

/// A storage peer that accepts the connection and never reads: a PUT of 16 MiB fills the
/// socket buffers and blocks in its write; the transport gives up at the request's deadline
/// (1 s here; the upload machine's part deadline in an upload) instead of hanging, and the
/// failure is a timeout. A hang guard, not a timing assertion.
#[test]
fn a_storage_peer_that_never_reads_the_body_cannot_hang_a_put() {
    for backend in ["ureq", "reqwest"] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/bucket/key?{SIGNED_QUERY}", listener.local_addr().unwrap());
        // Accepts and holds every connection, reading nothing, until the test ends.
        let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let holder = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                holder.lock().unwrap().push(stream);
            }
        });
        let body = Bytes::from(vec![7u8; 16 << 20]);
        let request = http::Request::builder()
            .method("PUT")
            .uri(&url)
            .header("content-length", body.len().to_string())
            .body(RequestBody::Bytes(body))
            .unwrap();
        let mut options = storage();
        options.timeout = Some(Duration::from_secs(1));
        let (done, finished) = std::sync::mpsc::channel();
        let name = backend.to_owned();
        std::thread::spawn(move || {
            let result = match name.as_str() {
                "ureq" => send_ureq(
                    &hotdata_ureq::UreqTransport::new(Some(Duration::from_secs(5))),
                    request,
                    options,
                ),
                _ => {
                    let transport = hotdata_reqwest::ReqwestTransport::new(Some(Duration::from_secs(5)));
                    send_reqwest(&transport, request, options)
                }
            };
            let _ = done.send(result.map(|_| ()).map_err(|e| (e.kind(), all_text(e))));
        });
        let result = finished
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{backend}: a PUT to a peer that never reads hung past its deadline"));
        let (kind, text) = result.expect_err("the PUT cannot finish");
        assert_eq!(kind, hotdata_core::TransportErrorKind::Timeout, "{backend}: {text}");
        assert!(!text.contains("SECRET"), "{backend}: {text}");
        drop(held);
    }
}

/// S3 refuses a PUT whose signature does not verify (or whose URL expired) from its head,
/// answers `403` and closes without reading the body. Found against s3s-fs
/// (`tests/real_storage.rs`): ureq, still writing a part, got a broken pipe and the upload
/// failed with "connection closed before any response", S3's reason lost. ureq now sends
/// `Expect: 100-continue` on storage PUTs and reads the refusal before sending the body,
/// every time. reqwest (hyper) has no `100-continue`: it reads such an early answer only
/// when it arrives before the connection's reset (8 runs in 30 lost it here), else the PUT
/// fails before any response (a failure the upload's rounds retry): both are accepted for
/// it, nothing else.
#[test]
fn a_storage_put_refused_from_its_head_is_that_answer_not_a_broken_pipe() {
    const REFUSAL: &str = "<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>";
    let part = Bytes::from(vec![7u8; 8 << 20]);
    let request = |url: &str| {
        http::Request::builder()
            .method("PUT")
            .uri(format!("{url}/bucket/part?X-Amz-Signature=abc"))
            .header("content-length", part.len().to_string())
            .body(RequestBody::Bytes(part.clone()))
            .unwrap()
    };
    for backend in ["ureq", "reqwest"] {
        let server = RawServer::start(Script::RefuseBeforeBody(403, REFUSAL));
        let exchange = if backend == "ureq" {
            exchange_blocking(
                &hotdata_ureq::UreqTransport::new(None),
                request(&server.url()),
                &storage(),
                || {},
            )
        } else {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let transport = hotdata_reqwest::ReqwestTransport::new(None);
            rt.block_on(exchange_async(&transport, request(&server.url()), &storage(), || {}))
        };
        match exchange {
            Exchange::Done(status, body) => {
                assert_eq!(status, 403, "{backend}");
                assert_eq!(body, REFUSAL.as_bytes(), "{backend}");
            }
            Exchange::SendFailed(e) if backend == "reqwest" => {
                assert_eq!(e.kind(), hotdata_core::TransportErrorKind::NoResponse, "{backend}: {e}")
            }
            other => panic!("{backend}: {other:?}"),
        }
        assert_eq!(
            server.seen()[0].header("expect"),
            (backend == "ureq").then_some("100-continue"),
            "{backend}"
        );
    }
}
