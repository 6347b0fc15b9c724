//! Upload sessions and the presigned-style storage endpoint.

mod common;

use common::{Client, R};
use hotdata_emulator::{Emulator, EmulatorHandle};
use serde_json::{Value, json};

fn small_parts() -> EmulatorHandle {
    Emulator::builder().single_put_max(16).min_part_size(8).default_part_size(10).start().unwrap()
}

fn finalize(c: &Client, s: &Value, body: Value) -> R {
    c.call(
        "POST",
        &format!("/v1/uploads/{}/finalize", s["upload_id"].as_str().unwrap()),
        &[("x-upload-finalize-token", s["finalize_token"].as_str().unwrap())],
        Some(serde_json::to_vec(&body).unwrap()),
    )
}

fn mint(c: &Client, s: &Value, parts: &[u32]) -> R {
    c.call(
        "POST",
        &format!("/v1/uploads/{}/parts", s["upload_id"].as_str().unwrap()),
        &[("x-upload-finalize-token", s["finalize_token"].as_str().unwrap())],
        Some(serde_json::to_vec(&json!({"part_numbers": parts})).unwrap()),
    )
}

#[test]
fn single_put_rules() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let data = b"id,v\n1,a\n2,b\n".to_vec();
    let s =
        c.post("/v1/uploads", json!({"declared_size_bytes": data.len(), "content_type": "text/csv"})).json();
    assert_eq!(s["mode"], "single");
    assert_eq!(s["headers"], json!({}));
    let s0 = s.clone();
    let url = s["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/_storage/", c.base)), "{url}");
    assert!(url.contains("X-Signature="));
    // Foreign credentials are refused, like real object storage.
    for h in [("authorization", "Bearer x"), ("x-workspace-id", "ws")] {
        let r = c.raw("PUT", url, &[h], Some(data.clone())).unwrap();
        assert_eq!(r.status, 403, "{h:?}");
        assert!(r.text().contains("<Code>AccessDenied</Code>"));
    }
    // A tampered signature is refused.
    let bad = url.replace("X-Signature=", "X-Signature=0");
    assert_eq!(c.raw("PUT", &bad, &[], Some(data.clone())).unwrap().status, 403);
    // Finalize before any PUT fails; `parts: null` is rejected.
    assert_eq!(finalize(&c, &s, json!({})).status, 400);
    let r = c.raw("PUT", url, &[], Some(data.clone())).unwrap();
    assert_eq!(r.status, 200);
    let etag = r.header("etag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(finalize(&c, &s, json!({"parts": null})).status, 400);
    // Token rules.
    let id = s["upload_id"].as_str().unwrap();
    let r = c.call("POST", &format!("/v1/uploads/{id}/finalize"), &[], Some(b"{}".to_vec()));
    assert_eq!(r.status, 400);
    let r = c.call(
        "POST",
        &format!("/v1/uploads/{id}/finalize"),
        &[("x-upload-finalize-token", "wrong")],
        Some(b"{}".to_vec()),
    );
    assert_eq!(r.status, 400);
    let r = finalize(&c, &s, json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["size_bytes"], data.len());
    assert_eq!(v["content_type"], "text/csv");
    // Exactly once.
    assert_eq!(finalize(&c, &s, json!({})).json()["error"]["code"], "ALREADY_FINALIZED");
    // PUT after completion is refused; GET returns the object.
    assert_eq!(c.raw("PUT", url, &[], Some(data.clone())).unwrap().status, 404);
    assert_eq!(c.raw("GET", url, &[], None).unwrap().body, data);
    // Declared size must match.
    let s = c.post("/v1/uploads", json!({"declared_size_bytes": 3})).json();
    c.raw("PUT", s["url"].as_str().unwrap(), &[], Some(b"abcd".to_vec())).unwrap();
    assert_eq!(finalize(&c, &s, json!({})).json()["error"]["code"], "SIZE_MISMATCH");
    // Over the upload limit at create.
    let r = c.post("/v1/uploads", json!({"declared_size_bytes": 17u64 << 30}));
    assert_eq!(r.status, 400);
    // Storage requests never carry auth, and the log shows it.
    assert!(
        emu.requests()
            .iter()
            .filter(|r| r.operation == "storage_put" && r.status == 200)
            .all(|r| !r.had_authorization)
    );
    let fin = emu
        .requests()
        .into_iter()
        .find(|r| r.operation == "finalize_upload_handler" && r.status == 200)
        .unwrap();
    assert_eq!(fin.header("X-Upload-Finalize-Token"), s0["finalize_token"].as_str());
}

#[test]
fn known_size_multipart() {
    let emu = small_parts();
    let c = Client::new(&emu);
    let data: Vec<u8> = (0..35u8).collect();
    let s = c.post("/v1/uploads", json!({"declared_size_bytes": 35, "part_size": 10})).json();
    assert_eq!(s["mode"], "multipart");
    assert_eq!(s["part_size"], 10);
    let urls: Vec<String> =
        s["part_urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect();
    assert_eq!(urls.len(), 4);
    // A part larger than part_size is refused.
    let r = c.raw("PUT", &urls[0], &[], Some(vec![0; 11])).unwrap();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("EntityTooLarge"));
    let mut tags = vec![];
    for (i, u) in urls.iter().enumerate() {
        let chunk = data[i * 10..((i + 1) * 10).min(35)].to_vec();
        let r = c.raw("PUT", u, &[], Some(chunk)).unwrap();
        assert_eq!(r.status, 200);
        tags.push(r.header("etag").unwrap().to_string());
    }
    let parts = |order: &[usize]| -> Value {
        json!({"parts": order.iter().map(|&i| json!({"part_number": i + 1, "e_tag": tags[i]})).collect::<Vec<_>>()})
    };
    // Out of order, wrong ETag, missing part: all rejected.
    assert_eq!(finalize(&c, &s, parts(&[1, 0, 2, 3])).status, 400);
    let mut wrong = parts(&[0, 1, 2, 3]);
    wrong["parts"][1]["e_tag"] = json!("\"nope\"");
    assert_eq!(finalize(&c, &s, wrong).status, 400);
    assert_eq!(finalize(&c, &s, parts(&[0, 1, 2])).json()["error"]["code"], "SIZE_MISMATCH");
    // Unquoted ETags do not match: they must be sent verbatim.
    let mut unq = parts(&[0, 1, 2, 3]);
    unq["parts"][0]["e_tag"] = json!(tags[0].trim_matches('"'));
    assert_eq!(finalize(&c, &s, unq).status, 400);
    let r = finalize(&c, &s, parts(&[0, 1, 2, 3]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["size_bytes"], 35);
    // Re-minting works on known-size sessions too, and part 5 does not exist.
    let s2 = c.post("/v1/uploads", json!({"declared_size_bytes": 20})).json();
    assert_eq!(mint(&c, &s2, &[2]).status, 200);
    assert_eq!(mint(&c, &s2, &[3]).status, 400);
}

#[test]
fn streaming_multipart_with_minting() {
    let emu = small_parts();
    let c = Client::new(&emu);
    let csv = b"id,name\n1,alpha\n2,beta\n3,gamma\n".to_vec(); // 31 bytes
    let s = c.post("/v1/uploads", json!({"part_size": 10, "filename": "x.csv"})).json();
    assert_eq!(s["mode"], "multipart");
    assert!(s.get("part_urls").is_none(), "streaming sessions have no part_urls");
    let ps = s["part_size"].as_u64().unwrap() as usize;
    // A too-small non-final part fails at finalize.
    let m = mint(&c, &s, &[1]).json();
    let r = c.raw("PUT", m["parts"][0]["url"].as_str().unwrap(), &[], Some(b"tiny".to_vec())).unwrap();
    let tiny = r.header("etag").unwrap().to_string();
    let m2 = mint(&c, &s, &[2]).json();
    let r2 = c.raw("PUT", m2["parts"][0]["url"].as_str().unwrap(), &[], Some(b"rest".to_vec())).unwrap();
    let r = finalize(
        &c,
        &s,
        json!({"parts": [{"part_number": 1, "e_tag": tiny}, {"part_number": 2, "e_tag": r2.header("etag").unwrap()}]}),
    );
    assert_eq!(r.json()["error"]["code"], "ENTITY_TOO_SMALL");
    // Now the real thing: one mint per part, PUT, finalize, load.
    let mut parts = vec![];
    for (i, chunk) in csv.chunks(ps).enumerate() {
        let n = i as u32 + 1;
        let m = mint(&c, &s, &[n]).json();
        assert_eq!(m["parts"][0]["part_number"], n);
        let r = c.raw("PUT", m["parts"][0]["url"].as_str().unwrap(), &[], Some(chunk.to_vec())).unwrap();
        parts.push(json!({"part_number": n, "e_tag": r.header("etag").unwrap()}));
    }
    let r = finalize(&c, &s, json!({"parts": parts}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(mint(&c, &s, &[1]).json()["error"]["code"], "ALREADY_FINALIZED");
    let db = c.database("up");
    let r = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/names/loads"),
        json!({"mode": "replace", "upload_id": s["upload_id"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        c.sql(&db, "SELECT name FROM names ORDER BY id")["rows"],
        json!([["alpha"], ["beta"], ["gamma"]])
    );
    // Empty streaming uploads are refused; mint bounds are checked.
    let e = c.post("/v1/uploads", json!({})).json();
    assert_eq!(finalize(&c, &e, json!({"parts": []})).status, 400);
    assert_eq!(mint(&c, &e, &[10_001]).status, 400);
    assert_eq!(mint(&c, &e, &[]).status, 400);
}

#[test]
fn presign_unsupported_and_legacy_files() {
    let emu = Emulator::builder().presign(false).start().unwrap();
    let c = Client::new(&emu);
    let r = c.post("/v1/uploads", json!({"declared_size_bytes": 5}));
    assert_eq!(r.status, 501);
    assert_eq!(r.json()["error"]["code"], "PRESIGN_UNSUPPORTED");
    let auth = format!("Bearer {}", c.key);
    let r = c
        .raw(
            "POST",
            &format!("{}/v1/files", c.base),
            &[("authorization", &auth), ("x-workspace-id", &c.ws), ("content-type", "text/csv")],
            Some(b"a,b\n1,2\n".to_vec()),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["size_bytes"], 8);
    let files = c.get("/v1/files").json();
    assert_eq!(files["uploads"].as_array().unwrap().len(), 1);
    let db = c.database("legacy");
    let r = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/t/loads"),
        json!({"mode": "replace", "upload_id": v["id"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.sql(&db, "SELECT a + b FROM t")["rows"], json!([[3]]));
}
