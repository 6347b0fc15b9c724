//! URLs without their secrets: [`redact_url`] keeps a URL's scheme, host, port and path, and
//! [`scrub`] rewrites an error chain whose text holds what `redact_url` removes (a presigned
//! URL's signature, mostly). The one place backends and the core redact URLs.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

/// `url` without what may be secret in it: its query (where a presigned URL keeps its
/// signature and credential), its fragment and its user info. What is left, the scheme,
/// host, port and path, still tells which endpoint failed. A URL with none of these comes
/// back as it is.
///
/// ```
/// use hotdata_core::transport::redact_url;
/// assert_eq!(
///     redact_url("https://bucket.s3.amazonaws.com/up/part-1?X-Amz-Signature=abc#x"),
///     "https://bucket.s3.amazonaws.com/up/part-1"
/// );
/// assert_eq!(redact_url("https://user:pw@host:8443/p"), "https://host:8443/p");
/// assert_eq!(redact_url("https://api.hotdata.dev/v1/databases"), "https://api.hotdata.dev/v1/databases");
/// ```
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let kept = &url[..end];
    let (scheme, rest) = match kept.find("://") {
        Some(i) => kept.split_at(i + 3),
        None => ("", kept),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if !scheme.is_empty() => Cow::Owned(format!("{scheme}{}", &rest[at + 1..])),
        _ if end == url.len() => Cow::Borrowed(url),
        _ => Cow::Borrowed(kept),
    }
}

/// The parts of `url` that [`redact_url`] removes and that could show in an error's text:
/// the query, each query value of 8 characters or more (as written and percent-decoded),
/// the fragment and the user info. Longest first, so that a longer one is replaced before a
/// part of it.
fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    if let Some((_, query)) = before_fragment.split_once('?') {
        found.push(query.to_owned());
        for pair in query.split('&') {
            let value = pair.split_once('=').map_or(pair, |(_, v)| v);
            if value.len() >= 8 {
                found.push(value.to_owned());
                let decoded = percent_decode(value);
                if decoded != value {
                    found.push(decoded);
                }
            }
        }
    }
    found.extend(fragment.map(str::to_owned));
    if let Some((_, rest)) = url.split_once("://") {
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            found.push(authority[..at].to_owned());
        }
    }
    found.retain(|s| !s.is_empty());
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

/// `%XX` escapes (and `+`, as a space) decoded; anything malformed kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An error that was rewritten to hide a URL's secrets: its `Display` and `Debug` text with
/// them removed, and its source, rewritten the same way.
pub(crate) struct Redacted {
    display: String,
    debug: String,
    source: Option<Box<Redacted>>,
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.debug)
    }
}

impl StdError for Redacted {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

/// `error`'s chain rewritten without the secrets of `url` when any error in it shows them
/// (in its `Display` or `Debug`), or `None` when none does. The URL itself is shown as
/// [`redact_url`] gives it; any other trace of a secret becomes `[redacted]`.
pub(crate) fn scrub(error: &(dyn StdError + 'static), url: &str) -> Option<Redacted> {
    let secrets = secrets(url);
    if secrets.is_empty() {
        return None;
    }
    let mut texts = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        texts.push((e.to_string(), format!("{e:?}")));
        next = e.source();
    }
    let leaks = |t: &str| secrets.iter().any(|s| t.contains(s.as_str()));
    if !texts.iter().any(|(display, debug)| leaks(display) || leaks(debug)) {
        return None;
    }
    let redacted = redact_url(url);
    let clean = |t: &str| {
        let mut t = t.replace(url, &redacted);
        for s in &secrets {
            t = t.replace(s.as_str(), "[redacted]");
        }
        t
    };
    texts.into_iter().rev().fold(None, |source, (display, debug)| {
        Some(Redacted { display: clean(&display), debug: clean(&debug), source: source.map(Box::new) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SIGNED: &str = "https://b.s3.amazonaws.com/u/p?X-Amz-Credential=AKID%2F2026%2Fs3&X-Amz-Signature=0123456789abcdef&X-Amz-Expires=900";

    #[test]
    fn a_url_keeps_scheme_host_port_and_path() {
        assert_eq!(redact_url(SIGNED), "https://b.s3.amazonaws.com/u/p");
        assert_eq!(redact_url("http://127.0.0.1:9000/bucket/key?sig=1"), "http://127.0.0.1:9000/bucket/key");
        assert_eq!(redact_url("http://u:p@host/x?q=1"), "http://host/x");
        assert_eq!(redact_url("http://u:p@host?q=1"), "http://host");
        assert_eq!(redact_url("http://host/a@b?q"), "http://host/a@b", "an @ in the path is not user info");
        assert_eq!(redact_url("/v1/files?x=1"), "/v1/files");
        assert_eq!(redact_url("http://host/p#frag"), "http://host/p");
        assert!(matches!(redact_url("http://host/p"), Cow::Borrowed("http://host/p")));
    }

    #[test]
    fn the_secrets_are_the_query_its_long_values_and_the_user_info() {
        let s = secrets(SIGNED);
        assert!(s.contains(&"AKID%2F2026%2Fs3".to_owned()));
        assert!(s.contains(&"AKID/2026/s3".to_owned()), "percent-decoded too");
        assert!(s.contains(&"0123456789abcdef".to_owned()));
        assert!(!s.contains(&"900".to_owned()), "short values are not worth hiding");
        assert_eq!(s[0], SIGNED.split_once('?').unwrap().1, "longest first");
        assert_eq!(secrets("http://user:pass@host/p"), ["user:pass"]);
        assert!(secrets("http://host/p").is_empty());
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[derive(Debug)]
    struct Leaky(String, Option<Box<Leaky>>);
    impl fmt::Display for Leaky {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "failed: {}", self.0)
        }
    }
    impl StdError for Leaky {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|s| s as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn a_chain_showing_a_secret_is_rewritten_and_one_that_does_not_is_left() {
        let inner = Leaky("signature 0123456789abcdef rejected".into(), None);
        let outer = Leaky(format!("sending {SIGNED}"), Some(Box::new(inner)));
        let r = scrub(&outer, SIGNED).expect("rewritten");
        assert_eq!(r.to_string(), "failed: sending https://b.s3.amazonaws.com/u/p");
        let inner = StdError::source(&r).expect("the chain is kept");
        assert_eq!(inner.to_string(), "failed: signature [redacted] rejected");
        let debug = format!("{r:?}");
        assert!(!debug.contains("0123456789abcdef") && !debug.contains("AKID"), "{debug}");
        assert!(debug.contains("https://b.s3.amazonaws.com/u/p"), "{debug}");

        let clean = Leaky("connection reset".into(), None);
        assert!(scrub(&clean, SIGNED).is_none());
        assert!(scrub(&outer, "http://host/p").is_none(), "no secret in the URL: nothing to hide");
    }
}
