//! Name resolution for the transport's own agents, without a thread per call.
//!
//! ureq resolves the host of every request before it looks in its connection pool, and its
//! default resolver spawns a thread for each lookup whenever the request has a timeout (the
//! SDK always sets one) so that it can give up on a slow lookup: a small call over a pooled
//! connection paid a thread and a `getaddrinfo` (which may mean a DNS query), about
//! three quarters of the CPU of a small call on loopback (`BENCHMARKS.md`).
//!
//! [`CachingResolver`] answers an IP literal at once, and keeps the addresses of a host
//! name for [`TTL`]: no longer than ureq keeps an idle connection to the address it found
//! (15 s), so it never holds on to an address longer than the pool would. A lookup that
//! misses the cache is ureq's own (on a thread, bounded by the request's timeout).
//!
//! This uses ureq's `unversioned` API, which does not follow semver: ureq is pinned exactly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::{Config, IpFamily};
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long the addresses of a host name are reused.
pub(crate) const TTL: Duration = Duration::from_secs(10);

/// Hosts remembered at most; past it, expired entries go, then all of them.
const MAX_HOSTS: usize = 64;

/// A resolver that answers IP literals without a lookup and keeps a host name's addresses
/// for [`TTL`]; lookups are `R`'s (ureq's [`DefaultResolver`]).
#[derive(Debug, Default)]
pub(crate) struct CachingResolver<R = DefaultResolver> {
    inner: R,
    cache: Mutex<HashMap<(String, u8), (Instant, ResolvedSocketAddrs)>>,
}

fn family_key(family: IpFamily) -> u8 {
    match family {
        IpFamily::Any => 0,
        IpFamily::Ipv4Only => 4,
        IpFamily::Ipv6Only => 6,
    }
}

impl<R: Resolver> CachingResolver<R> {
    #[cfg(test)]
    fn with_inner(inner: R) -> Self {
        Self { inner, cache: Mutex::default() }
    }

    fn resolve_at(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
        now: Instant,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // `host:port` with the scheme's default port; anything ureq would refuse (no scheme,
        // no host, an unknown scheme) goes to ureq's resolver for its own error.
        let Some(host_port) =
            uri.scheme().zip(uri.authority()).and_then(|(s, a)| DefaultResolver::host_and_port(s, a))
        else {
            return self.inner.resolve(uri, config, timeout);
        };
        // An IP literal (`[..]` around IPv6, as `SocketAddr` parses it): nothing to look up.
        if let Ok(addr) = host_port.parse::<SocketAddr>() {
            if config.ip_family().keep_wanted(std::iter::once(addr)).next().is_none() {
                return Err(ureq::Error::HostNotFound);
            }
            let mut out = self.inner.empty();
            out.push(addr);
            return Ok(out);
        }
        let key = (host_port, family_key(config.ip_family()));
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, addrs)) = cache.get(&key)
            && now.saturating_duration_since(*at) < TTL
        {
            return Ok(addrs.clone());
        }
        // Looked up without holding the lock (a slow lookup must not stall other hosts).
        drop(cache);
        let addrs = self.inner.resolve(uri, config, timeout)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_HOSTS {
            cache.retain(|_, (at, _)| now.saturating_duration_since(*at) < TTL);
            if cache.len() >= MAX_HOSTS {
                cache.clear();
            }
        }
        cache.insert(key, (now, addrs.clone()));
        Ok(addrs)
    }
}

impl<R: Resolver> Resolver for CachingResolver<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        self.resolve_at(uri, config, timeout, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts lookups; answers every host with 10.0.0.1 on the request's port.
    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    impl Resolver for Counting {
        fn resolve(&self, uri: &Uri, _: &Config, _: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let port = uri.port_u16().unwrap_or(443);
            let mut out = self.empty();
            out.push(SocketAddr::from(([10, 0, 0, 1], port)));
            Ok(out)
        }
    }

    fn resolve(r: &CachingResolver<Counting>, uri: &str, config: &Config, now: Instant) -> Vec<SocketAddr> {
        let uri: Uri = uri.parse().unwrap();
        r.resolve_at(&uri, config, NextTimeout::default(), now).unwrap().iter().copied().collect()
    }

    #[test]
    fn ip_literals_are_never_looked_up() {
        let r = CachingResolver::with_inner(Counting::default());
        let config = Config::default();
        let now = Instant::now();
        assert_eq!(
            resolve(&r, "http://127.0.0.1:8080/v1/x", &config, now),
            ["127.0.0.1:8080".parse().unwrap()]
        );
        assert_eq!(resolve(&r, "https://[::1]/v1/x", &config, now), ["[::1]:443".parse().unwrap()]);
        assert_eq!(resolve(&r, "http://10.1.2.3/", &config, now), ["10.1.2.3:80".parse().unwrap()]);
        assert_eq!(r.inner.0.load(Ordering::SeqCst), 0);
        // A literal of a family the agent does not use is not found, as ureq's resolver says.
        let v4 = Config::builder().ip_family(IpFamily::Ipv4Only).build();
        let uri: Uri = "https://[::1]/".parse().unwrap();
        let e = r.resolve_at(&uri, &v4, NextTimeout::default(), now).unwrap_err();
        assert!(matches!(e, ureq::Error::HostNotFound), "{e:?}");
    }

    #[test]
    fn a_host_name_is_looked_up_once_per_ttl_and_per_port() {
        let r = CachingResolver::with_inner(Counting::default());
        let config = Config::default();
        let t0 = Instant::now();
        let lookups = || r.inner.0.load(Ordering::SeqCst);
        for i in 0..5 {
            resolve(&r, "https://api.example.test/v1/workspaces", &config, t0 + Duration::from_millis(i));
        }
        assert_eq!(lookups(), 1, "pooled calls reuse the addresses");
        assert_eq!(
            resolve(&r, "https://api.example.test:8443/", &config, t0),
            ["10.0.0.1:8443".parse().unwrap()]
        );
        assert_eq!(lookups(), 2, "another port is another entry");
        resolve(&r, "https://api.example.test/", &config, t0 + TTL);
        assert_eq!(lookups(), 3, "looked up again once the entry is TTL old");
        let v6 = Config::builder().ip_family(IpFamily::Ipv6Only).build();
        resolve(&r, "https://api.example.test/", &v6, t0 + TTL);
        assert_eq!(lookups(), 4, "another IP family is another entry");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let r = CachingResolver::with_inner(Counting::default());
        let config = Config::default();
        let t0 = Instant::now();
        for i in 0..(MAX_HOSTS * 3) {
            resolve(&r, &format!("https://h{i}.example.test/"), &config, t0);
        }
        assert!(r.cache.lock().unwrap().len() <= MAX_HOSTS);
    }

    #[test]
    fn a_uri_ureq_cannot_resolve_gets_ureqs_own_answer() {
        let r: CachingResolver = CachingResolver::default();
        let uri: Uri = "/relative".parse().unwrap();
        assert!(r.resolve(&uri, &Config::default(), NextTimeout::default()).is_err());
    }
}
