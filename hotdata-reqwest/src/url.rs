//! A request's `http::Uri` as the `Url` reqwest wants, without parsing the whole URL again
//! on every request.
//!
//! reqwest's own conversion (`reqwest::Request::try_from(http::Request)`) formats the `Uri`
//! and parses the text with the `url` crate: a few thousand instructions a call, most of them
//! in the host (IDNA processing, even for an IP literal). The scheme and authority of an API
//! client's requests hardly ever change, so they are parsed once per origin here and each
//! request sets its path and query on a copy: the same `url` parser, the same result
//! (checked against a full parse in the tests below), a fraction of the work.

use std::sync::Mutex;

use reqwest::Url;

/// How many origins are kept: the API and a few storage hosts.
const MAX_ORIGINS: usize = 4;

/// Parsed origins (`scheme://authority/`) by the exact text of scheme and authority.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    parsed: Mutex<Vec<(http::uri::Scheme, http::uri::Authority, Url)>>,
}

impl Origins {
    /// `uri` as a `Url`: equal to `Url::parse(&uri.to_string()).ok()`. `None` for a URI
    /// without scheme or authority, or one whose origin does not parse: the caller then
    /// leaves the conversion (and its error) to reqwest.
    pub(crate) fn url(&self, uri: &http::Uri) -> Option<Url> {
        let mut url = self.origin(uri.scheme()?, uri.authority()?)?;
        url.set_path(uri.path());
        url.set_query(uri.query());
        Some(url)
    }

    /// The parsed `scheme://authority/`, from the cache or parsed now (and kept).
    fn origin(&self, scheme: &http::uri::Scheme, authority: &http::uri::Authority) -> Option<Url> {
        let mut parsed = self.parsed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // By exact text: `http`'s `Authority` equality ignores case, user info does not.
        let same = |(s, a, _): &&(http::uri::Scheme, http::uri::Authority, Url)| {
            s.as_str() == scheme.as_str() && a.as_str() == authority.as_str()
        };
        if let Some((_, _, url)) = parsed.iter().find(same) {
            return Some(url.clone());
        }
        let url = Url::parse(&format!("{scheme}://{authority}/")).ok()?;
        if parsed.len() == MAX_ORIGINS {
            parsed.remove(0);
        }
        parsed.push((scheme.clone(), authority.clone(), url.clone()));
        Some(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of these parts, converted both ways: the cache must give what a
    /// full parse gives (or fail where it fails), on the first use of an origin and after.
    #[test]
    fn the_url_is_what_a_full_parse_gives() {
        let origins = [
            "http://127.0.0.1:8080",
            "https://api.hotdata.dev",
            "https://API.Hotdata.DEV:443",
            "http://api.hotdata.dev:80",
            "http://[::1]:9000",
            "http://[0:0:0:0:0:0:0:1]",
            "https://user:pa%20ss@bucket.s3.amazonaws.com",
            "http://xn--bcher-kva.example",
            "http://0x7f.1",
            "http://localhost:1",
        ];
        let paths = [
            "",
            "/",
            "/v1/workspaces",
            "/v1/databases/db%2Fx/tables",
            "/v1/a/./b/../c",
            "/v1/%2E%2E/x",
            "/v1/with%20space/%7Ebrace%7D",
            "/v1/it's/a|b/\"q\"/^`",
            "/bucket/key%3Fnot-a-query",
            "//double//slash",
            "/a;b=c/d:e@f!$&'()*+,=",
        ];
        let queries = [
            "",
            "?limit=10&search=a%20b",
            "?X-Amz-Signature=abc%2Bdef&X-Amz-Expires=3600",
            "?a='b'&c=\"d\"",
            "?",
            "?k=v/w?x",
            "?%zz=%",
            "?a=|b^`{}",
        ];
        let cache = Origins::default();
        let mut checked = 0;
        for round in 0..2 {
            for origin in origins {
                for path in paths {
                    for query in queries {
                        let text = format!("{origin}{path}{query}");
                        let Ok(uri) = text.parse::<http::Uri>() else { continue };
                        let expected = Url::parse(&uri.to_string()).ok();
                        let got = cache.url(&uri);
                        assert_eq!(
                            got.as_ref().map(Url::as_str),
                            expected.as_ref().map(Url::as_str),
                            "round {round}: {text}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000, "too few URIs parsed: {checked}");
    }

    /// A URI without scheme and authority is left to reqwest's own conversion.
    #[test]
    fn a_relative_uri_is_left_to_reqwest() {
        let uri: http::Uri = "/v1/workspaces".parse().unwrap();
        assert_eq!(Origins::default().url(&uri), None);
    }

    /// `http`'s `Authority` compares without case; user info is case-sensitive, so an
    /// origin is found by its exact text: `User:Pw@host` never gets `user:pw@host`'s URL.
    #[test]
    fn origins_differing_only_in_case_are_kept_apart() {
        let cache = Origins::default();
        for text in [
            "http://User:Pw@h:1/a",
            "http://user:pw@h:1/a",
            "http://User:Pw@h:1/b",
            "http://H:1/c",
            "http://h:1/c",
        ] {
            let uri: http::Uri = text.parse().unwrap();
            assert_eq!(cache.url(&uri).unwrap().as_str(), Url::parse(text).unwrap().as_str(), "{text}");
        }
    }

    #[test]
    fn origins_are_kept_up_to_the_limit() {
        let cache = Origins::default();
        for port in 0..10 {
            let uri: http::Uri = format!("http://127.0.0.1:{}/p", 1000 + port).parse().unwrap();
            assert_eq!(cache.url(&uri).unwrap().as_str(), format!("http://127.0.0.1:{}/p", 1000 + port));
        }
        assert_eq!(cache.parsed.lock().unwrap().len(), MAX_ORIGINS);
    }
}
