//! A small, strict parser for absolute `http://` and `https://` URLs and RFC 3986
//! reference resolution (for `Location` headers). It produces exactly the parts a
//! `wasi:http` request needs: scheme, authority and path-with-query.
//!
//! It is deliberately narrower than a browser's URL parser: no credentials in
//! URLs, ASCII host names only (internationalized names must be given in
//! punycode), and characters that are not allowed in a request target are
//! percent-encoded.

use std::fmt;

/// The two schemes this tool fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The scheme's name, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed absolute http(s) URL, without fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: Scheme,
    /// Lower-case host name, IPv4 address, or bracketed IPv6 address.
    host: String,
    /// The explicit port, if it differs from the scheme's default.
    port: Option<u16>,
    /// Percent-encoded path, always starting with `/`.
    path: String,
    /// Percent-encoded query without the `?`, if present.
    query: Option<String>,
}

impl Url {
    /// Parses an absolute http or https URL.
    pub fn parse(input: &str) -> Result<Url, String> {
        let text = input.trim();
        if text.is_empty() {
            return Err(
                "the URL is empty; pass an absolute URL such as \"https://example.com/\"".into(),
            );
        }
        let Some((scheme, rest)) = split_scheme(text) else {
            return Err(format!(
                "{text:?} is not an absolute URL: it has no scheme; write it in full, \
                 e.g. \"https://{}\"",
                text.trim_start_matches('/')
            ));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(format!(
                    "URL scheme \"{other}\" is not supported; only http:// and https:// URLs can \
                     be fetched"
                ));
            }
        };
        let Some(rest) = rest.strip_prefix("//") else {
            return Err(format!(
                "{text:?} is not a valid URL: expected \"{}://\" followed by a host name, \
                 e.g. \"{}://example.com/page\"",
                scheme.as_str(),
                scheme.as_str()
            ));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?', '\\']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if target.starts_with('\\') {
            return Err(format!(
                "{text:?} is not a valid URL: use `/`, not `\\`, to separate path segments"
            ));
        }
        let (host, port) = parse_authority(authority, text)?;
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let port = port.filter(|&p| p != scheme.default_port());
        Ok(Url {
            scheme,
            host,
            port,
            path: encode(
                &remove_dot_segments(if path.is_empty() { "/" } else { path }),
                false,
            ),
            query: query.map(|q| encode(q, true)),
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or address (IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port the request goes to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// `host` or `host:port` (the port only when it is not the scheme's default).
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The request target: the path and, if any, `?` and the query.
    pub fn path_with_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    /// True when `other` has the same scheme, host and port.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port() == other.port()
    }

    /// The origin as an allowlist pattern would name it: `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.authority())
    }

    /// Resolves `reference` (e.g. a `Location` header) against this URL, per RFC 3986 §5.2.
    pub fn join(&self, reference: &str) -> Result<Url, String> {
        let reference = reference.trim();
        let reference = reference.split('#').next().unwrap_or_default();
        if split_scheme(reference).is_some() {
            return Url::parse(reference);
        }
        if reference.starts_with("//") {
            return Url::parse(&format!("{}:{reference}", self.scheme.as_str()));
        }
        let (ref_path, ref_query) = match reference.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (reference, None),
        };
        let (path, query) = if ref_path.is_empty() {
            (
                self.path.clone(),
                match ref_query {
                    Some(q) => Some(encode(q, true)),
                    None => self.query.clone(),
                },
            )
        } else if ref_path.starts_with('/') {
            (
                remove_dot_segments(ref_path),
                ref_query.map(|q| encode(q, true)),
            )
        } else {
            let base_dir = match self.path.rfind('/') {
                Some(at) => &self.path[..=at],
                None => "/",
            };
            (
                remove_dot_segments(&format!("{base_dir}{ref_path}")),
                ref_query.map(|q| encode(q, true)),
            )
        };
        Ok(Url {
            scheme: self.scheme,
            host: self.host.clone(),
            port: self.port,
            path: encode(&path, false),
            query,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path_with_query()
        )
    }
}

/// Splits `scheme:rest` when `text` starts with a syntactically valid scheme.
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let colon = text.find(':')?;
    let scheme = &text[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    Some((scheme, &text[colon + 1..]))
}

fn parse_authority(authority: &str, url: &str) -> Result<(String, Option<u16>), String> {
    if authority.contains('@') {
        return Err(format!(
            "{url:?} contains credentials (user:password@); they are not supported in URLs, \
             send them in an `authorization` header instead"
        ));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err(format!(
                "{url:?} has an IPv6 address without its closing `]`"
            ));
        };
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("{url:?} has an invalid IPv6 address [{inner}]"));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                format!("{url:?} has unexpected text after the IPv6 address: {after:?}")
            })?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return Err(format!(
            "{url:?} has no host name; write it like \"https://example.com/path\""
        ));
    }
    if !host.is_ascii() {
        return Err(format!(
            "the host name {host:?} contains non-ASCII characters; write internationalized \
             domain names in punycode (xn--...)"
        ));
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(format!(
            "the host name {host:?} contains characters that are not allowed in a host name \
             (only letters, digits, `-`, `_` and `.`)"
        ));
    }
    let port = match port {
        None | Some("") => None,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Some(port),
            _ => {
                return Err(format!(
                    "{url:?} has an invalid port {text:?}; a port is a number from 1 to 65535"
                ));
            }
        },
    };
    Ok((host, port))
}

/// RFC 3986 §5.2.4: resolves `.` and `..` segments of an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    output.push("");
                }
            }
            ".." => {
                if output.len() > 1 {
                    output.pop();
                }
                if i == last {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    let joined = output.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// Percent-encodes bytes that may not appear in a request target, keeping
/// existing `%XX` escapes.
fn encode(text: &str, query: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, &b) in bytes.iter().enumerate() {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@/".contains(&b)
            || (query && b == b'?')
            || (b == b'%'
                && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_common_urls() {
        let u = url("https://en.wikipedia.org/wiki/WebAssembly?action=raw#History");
        assert_eq!(u.scheme(), Scheme::Https);
        assert_eq!(u.host(), "en.wikipedia.org");
        assert_eq!(u.port(), 443);
        assert_eq!(u.authority(), "en.wikipedia.org");
        assert_eq!(u.path_with_query(), "/wiki/WebAssembly?action=raw");
        assert_eq!(
            u.to_string(),
            "https://en.wikipedia.org/wiki/WebAssembly?action=raw"
        );
        assert_eq!(url("HTTP://Example.COM").to_string(), "http://example.com/");
        assert_eq!(url("https://example.com?q=1").path_with_query(), "/?q=1");
        assert_eq!(url("  https://example.com/a  ").path_with_query(), "/a");
    }

    #[test]
    fn ports() {
        assert_eq!(url("https://example.com:443/").authority(), "example.com");
        assert_eq!(
            url("http://example.com:80/").to_string(),
            "http://example.com/"
        );
        let u = url("http://127.0.0.1:8080/x");
        assert_eq!(u.authority(), "127.0.0.1:8080");
        assert_eq!(u.port(), 8080);
        assert_eq!(u.origin(), "http://127.0.0.1:8080");
        let v6 = url("http://[::1]:3000/");
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.authority(), "[::1]:3000");
        assert_eq!(url("https://example.com:/").port(), 443);
        assert!(Url::parse("https://example.com:0/").is_err());
        assert!(Url::parse("https://example.com:99999/").is_err());
        assert!(Url::parse("https://example.com:+80/").is_err());
    }

    #[test]
    fn rejects_bad_urls_with_guidance() {
        let err = Url::parse("example.com/page").unwrap_err();
        assert!(err.contains("https://example.com/page"), "{err}");
        let err = Url::parse("ftp://example.com/").unwrap_err();
        assert!(err.contains("only http:// and https://"), "{err}");
        let err = Url::parse("https:example.com").unwrap_err();
        assert!(err.contains("https://"), "{err}");
        let err = Url::parse("https://user:pw@example.com/").unwrap_err();
        assert!(err.contains("authorization"), "{err}");
        let err = Url::parse("https://bücher.de/").unwrap_err();
        assert!(err.contains("punycode"), "{err}");
        assert!(Url::parse("").is_err());
        assert!(Url::parse("https:///path").is_err());
        assert!(Url::parse("https://exa mple.com/").is_err());
        assert!(Url::parse("https://[::1/").is_err());
        assert!(Url::parse("https://example.com\\path").is_err());
    }

    #[test]
    fn encodes_what_a_request_target_cannot_hold() {
        assert_eq!(
            url("https://example.com/a b/ü?q=a b&x=\"y\"").path_with_query(),
            "/a%20b/%C3%BC?q=a%20b&x=%22y%22"
        );
        assert_eq!(
            url("https://example.com/already%20encoded?x=%2F").path_with_query(),
            "/already%20encoded?x=%2F"
        );
        assert_eq!(url("https://example.com/100%").path_with_query(), "/100%25");
        assert_eq!(
            url("https://example.com/?filter[a]=1|2").path_with_query(),
            "/?filter%5Ba%5D=1%7C2"
        );
        assert_eq!(
            url("https://example.com/?a?b=/c").path_with_query(),
            "/?a?b=/c"
        );
    }

    #[test]
    fn removes_dot_segments() {
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("/../a"), "/a");
        assert_eq!(remove_dot_segments("/a/.."), "/");
        assert_eq!(remove_dot_segments("/a/."), "/a/");
        assert_eq!(remove_dot_segments("/"), "/");
        assert_eq!(url("https://example.com/a/../b").path_with_query(), "/b");
    }

    #[test]
    fn joins_references_per_rfc3986() {
        // Examples from RFC 3986 §5.4.1 with base http://a/b/c/d;p?q
        let base = url("http://a/b/c/d;p?q");
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("g/../h", "http://a/b/c/h"),
            ("https://other.example/x", "https://other.example/x"),
        ];
        for (reference, expected) in cases {
            assert_eq!(
                base.join(reference).unwrap().to_string(),
                expected,
                "reference {reference:?}"
            );
        }
        let https = url("https://example.com:8443/a/b");
        assert_eq!(
            https.join("//cdn.example.com/x").unwrap().to_string(),
            "https://cdn.example.com/x"
        );
        assert_eq!(
            https.join("c d").unwrap().to_string(),
            "https://example.com:8443/a/c%20d"
        );
        assert!(https.join("ftp://example.com/").is_err());
        assert!(https.join("mailto:someone@example.com").is_err());
    }

    #[test]
    fn origins() {
        let a = url("https://example.com/a");
        assert!(a.same_origin(&url("https://example.com:443/b")));
        assert!(!a.same_origin(&url("http://example.com/a")));
        assert!(!a.same_origin(&url("https://api.example.com/a")));
        assert!(!a.same_origin(&url("https://example.com:8443/a")));
    }
}
