//! Outbound HTTP allowlist patterns (`scheme://host[:port]`, `*.` subdomain
//! wildcards) and the address rules that keep a plugin from reaching the
//! host's own network (SSRF) unless a pattern names that address explicitly.

use std::fmt;
use std::net::IpAddr;

/// One allowlist entry from a manifest's `grants.http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Scheme,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// Exactly this (lowercase) name or IP literal.
    Exact(String),
    /// Any name strictly below this suffix: `*.example.com` matches
    /// `api.example.com` and `a.b.example.com`, not `example.com`.
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    Exact(u16),
    Any,
}

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{pattern:?} is not a valid HTTP allowlist pattern: {reason}; write it as scheme://host[:port], e.g. \"https://api.example.com\", \"https://*.example.com:8443\" or \"http://127.0.0.1:*\""
)]
pub struct PatternError {
    pattern: String,
    reason: &'static str,
}

impl HostPattern {
    /// Parses `scheme://host[:port]`; the port defaults to the scheme's and may be `*`.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let fail = |reason| PatternError {
            pattern: pattern.to_owned(),
            reason,
        };
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| fail("it has no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(fail("the scheme must be http or https")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(fail("it may not contain a path, query or user info"));
        }
        let (host, port) =
            split_host_port(rest).ok_or_else(|| fail("the host or port is malformed"))?;
        let port = match port {
            None => PortMatch::Exact(scheme.default_port()),
            Some("*") => PortMatch::Any,
            Some(p) => PortMatch::Exact(
                p.parse()
                    .map_err(|_| fail("the port is not a number from 1 to 65535"))?,
            ),
        };
        if port == PortMatch::Exact(0) {
            return Err(fail("the port is not a number from 1 to 65535"));
        }
        let host = host.to_ascii_lowercase();
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            // `*.com` would allow a whole top-level domain: require a dot.
            if !valid_dns_name(suffix) || (!suffix.contains('.') && suffix != "localhost") {
                return Err(fail(
                    "the wildcard suffix must be a domain name with a dot, like *.example.com",
                ));
            }
            HostMatch::Subdomains(suffix.to_owned())
        } else if host.contains('*') {
            return Err(fail("a wildcard is only allowed as a leading `*.`"));
        } else if host.parse::<IpAddr>().is_ok() || valid_dns_name(&host) {
            HostMatch::Exact(host)
        } else {
            return Err(fail("the host is not a valid name or IP address"));
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` matches this pattern.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match self.scheme {
            Scheme::Http => scheme.eq_ignore_ascii_case("http"),
            Scheme::Https => scheme.eq_ignore_ascii_case("https"),
        };
        let port_ok = match self.port {
            PortMatch::Any => true,
            PortMatch::Exact(p) => p == port,
        };
        let host = normalize_host(host);
        let host_ok = match &self.host {
            HostMatch::Exact(h) => *h == host,
            HostMatch::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        };
        scheme_ok && port_ok && host_ok
    }

    /// Whether this pattern is `localhost` or a subdomain of it, which may
    /// only ever resolve to loopback addresses.
    pub fn is_localhost(&self) -> bool {
        matches!(&self.host, HostMatch::Exact(h) | HostMatch::Subdomains(h) if h == "localhost")
    }

    /// Whether this pattern names a host that is itself local or private
    /// (`localhost`, or an IP literal in a non-public range). Only such
    /// patterns let a request reach non-public addresses.
    pub fn names_private_host(&self) -> bool {
        match &self.host {
            HostMatch::Exact(h) => {
                h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| !is_public(ip))
            }
            HostMatch::Subdomains(s) => s == "localhost",
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let host = match &self.host {
            HostMatch::Exact(h) => h.clone(),
            HostMatch::Subdomains(s) => format!("*.{s}"),
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        match self.port {
            PortMatch::Any => write!(f, "{scheme}://{host}:*"),
            PortMatch::Exact(p) => write!(f, "{scheme}://{host}:{p}"),
        }
    }
}

/// Strips IPv6 brackets and a trailing dot, and lowercases.
fn normalize_host(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))).filter(|(h, _)| !h.is_empty()),
        Some(_) => None,
        None => Some((s, None)).filter(|(h, _)| !h.is_empty()),
    }
}

fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `ip` is a globally routable address: not loopback, private,
/// link-local, unspecified, shared (CGNAT), documentation, benchmarking,
/// multicast or broadcast, and not an IPv6 form of one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, _, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            // IPv4-compatible (::a.b.c.d) and 6to4 (2002:AABB:CCDD::) embed an IPv4 address.
            let seg = v6.segments();
            if seg[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                let [a, b] = seg[6].to_be_bytes();
                let [c, d] = seg[7].to_be_bytes();
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            if seg[0] == 0x2002 {
                let [a, b] = seg[1].to_be_bytes();
                let [c, d] = seg[2].to_be_bytes();
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first & 0xffc0) == 0xfec0 // site local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64, may embed private v4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_host_defaults_to_scheme_port() {
        let pat = p("https://api.example.com");
        assert!(pat.matches("https", "api.example.com", 443));
        assert!(pat.matches("HTTPS", "API.example.com.", 443));
        assert!(!pat.matches("https", "api.example.com", 8443));
        assert!(!pat.matches("http", "api.example.com", 443));
        assert!(!pat.matches("https", "evil-api.example.com", 443));
        assert!(!pat.matches("https", "api.example.com.evil.net", 443));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let pat = p("https://*.example.com");
        assert!(pat.matches("https", "a.example.com", 443));
        assert!(pat.matches("https", "a.b.example.com", 443));
        assert!(!pat.matches("https", "example.com", 443));
        assert!(!pat.matches("https", "badexample.com", 443));
    }

    #[test]
    fn explicit_and_any_ports() {
        assert!(p("http://127.0.0.1:8080").matches("http", "127.0.0.1", 8080));
        assert!(!p("http://127.0.0.1:8080").matches("http", "127.0.0.1", 8081));
        assert!(p("http://127.0.0.1:*").matches("http", "127.0.0.1", 1));
        assert!(p("http://[::1]:9000").matches("http", "[::1]", 9000));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "https://ex*ample.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://",
            "https://*.",
            "https://*.com",
        ] {
            let err = HostPattern::parse(bad).unwrap_err().to_string();
            assert!(err.contains("scheme://host[:port]"), "{bad}: {err}");
        }
    }

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_literal_private_hosts_count_as_named() {
        assert!(p("http://127.0.0.1:*").names_private_host());
        assert!(p("http://localhost:8080").names_private_host());
        assert!(!p("https://*.example.com").names_private_host());
        assert!(!p("https://1.1.1.1").names_private_host());
    }
}
