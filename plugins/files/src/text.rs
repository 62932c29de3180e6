//! Text helpers: cutting a byte range of a file on UTF-8 character boundaries,
//! detecting binary content, and simple glob matching for names.

/// Bytes read beyond `max-bytes` so a chunk can end on a whole character and its
/// start can skip a partial character: up to 3 continuation bytes at each end.
pub const SLACK: usize = 6;

/// Why a chunk could not be returned as text.
#[derive(Debug, PartialEq, Eq)]
pub enum NotText {
    /// A NUL byte at this offset (relative to the chunk start).
    Nul(usize),
    /// Invalid UTF-8 at this offset (relative to the chunk start).
    InvalidUtf8(usize),
}

/// A decoded piece of text.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes skipped at the start because the chunk began inside a character.
    pub skipped: usize,
    /// The decoded text.
    pub text: String,
    /// Bytes of the input consumed by `text` (excluding `skipped`).
    pub consumed: usize,
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// Decodes up to `limit` bytes of `data` as UTF-8 text.
///
/// `data` was read starting at some offset, and holds up to `limit + SLACK` bytes;
/// `at_eof` says whether it reaches the end of the file. When `mid_file` is true
/// (the offset is not 0) up to three leading continuation bytes are skipped. The
/// result ends on a character boundary; when `limit` is smaller than the first
/// character, that whole character is returned so the reader always makes progress.
pub fn decode_chunk(
    data: &[u8],
    limit: usize,
    at_eof: bool,
    mid_file: bool,
) -> Result<Decoded, NotText> {
    let mut skipped = 0;
    if mid_file {
        while skipped < 3 && skipped < data.len() && is_continuation(data[skipped]) {
            skipped += 1;
        }
    }
    let body = &data[skipped..];
    let mut take = limit.min(body.len());
    if take < body.len() {
        while take > 0 && is_continuation(body[take]) {
            take -= 1;
        }
        if take == 0 && !body.is_empty() {
            take = 1;
            while take < body.len() && take < 4 && is_continuation(body[take]) {
                take += 1;
            }
        }
    } else if !at_eof {
        // The data ends before the file does (a short read): drop a trailing partial
        // character, it will be read again next time.
        let mut end = take;
        let mut back = 0;
        while end > 0 && back < 3 && is_continuation(body[end - 1]) {
            end -= 1;
            back += 1;
        }
        if end > 0 && body[end - 1] >= 0xC0 {
            let needed = match body[end - 1] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            if back + 1 < needed {
                take = end - 1;
            }
        }
    }
    let piece = &body[..take];
    if let Some(at) = piece.iter().position(|&b| b == 0) {
        return Err(NotText::Nul(skipped + at));
    }
    match std::str::from_utf8(piece) {
        Ok(text) => Ok(Decoded {
            skipped,
            text: text.to_string(),
            consumed: take,
        }),
        Err(e) => Err(NotText::InvalidUtf8(skipped + e.valid_up_to())),
    }
}

/// True when `data` (typically the start of a file) looks binary: it contains a NUL byte.
pub fn looks_binary(data: &[u8]) -> bool {
    data.contains(&0)
}

/// Cuts `line` to at most `max_chars` characters, marking the cut with `…`.
pub fn shorten(line: &str, max_chars: usize) -> String {
    match line.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// True when `pattern` uses glob syntax (`*` or `?`).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Matches a whole `name` against a glob with `*` (any run of characters, possibly
/// empty) and `?` (exactly one character). Other characters match themselves.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A name or line matcher built from the search pattern.
#[derive(Debug, Clone)]
pub struct Matcher {
    pattern: String,
    case_sensitive: bool,
    glob: bool,
}

impl Matcher {
    /// A matcher for `pattern`; `glob_allowed` enables `*`/`?` (names only).
    pub fn new(pattern: &str, case_sensitive: bool, glob_allowed: bool) -> Matcher {
        Matcher {
            pattern: if case_sensitive {
                pattern.to_string()
            } else {
                pattern.to_lowercase()
            },
            case_sensitive,
            glob: glob_allowed && is_glob(pattern),
        }
    }

    /// True when `haystack` matches: contains the pattern or, for a glob, matches it whole.
    pub fn matches(&self, haystack: &str) -> bool {
        let lowered;
        let haystack = if self.case_sensitive {
            haystack
        } else {
            lowered = haystack.to_lowercase();
            &lowered
        };
        if self.glob {
            glob_match(&self.pattern, haystack)
        } else {
            haystack.contains(&self.pattern)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_chunks() {
        let d = decode_chunk(b"hello world", 5, false, false).unwrap();
        assert_eq!(d.text, "hello");
        assert_eq!(d.consumed, 5);
        let d = decode_chunk(b"hello", 100, true, false).unwrap();
        assert_eq!(d.text, "hello");
        assert_eq!(d.consumed, 5);
        let d = decode_chunk(b"", 100, true, true).unwrap();
        assert_eq!(d.text, "");
        assert_eq!(d.consumed, 0);
    }

    #[test]
    fn chunks_end_on_character_boundaries() {
        // "aé€" = 61 C3 A9 E2 82 AC
        let data = "aé€b".as_bytes();
        let d = decode_chunk(data, 2, false, false).unwrap();
        assert_eq!(d.text, "a");
        assert_eq!(d.consumed, 1);
        let d = decode_chunk(data, 3, false, false).unwrap();
        assert_eq!(d.text, "aé");
        let d = decode_chunk(data, 5, false, false).unwrap();
        assert_eq!(d.text, "aé");
        let d = decode_chunk(data, 6, false, false).unwrap();
        assert_eq!(d.text, "aé€");
    }

    #[test]
    fn tiny_limits_still_make_progress() {
        let data = "€x".as_bytes();
        let d = decode_chunk(data, 1, false, false).unwrap();
        assert_eq!(d.text, "€");
        assert_eq!(d.consumed, 3);
    }

    #[test]
    fn leading_partial_character_is_skipped() {
        let data = "€x".as_bytes();
        let d = decode_chunk(&data[1..], 10, true, true).unwrap();
        assert_eq!(d.skipped, 2);
        assert_eq!(d.text, "x");
        // At offset 0 a continuation byte is simply invalid.
        assert_eq!(
            decode_chunk(&data[1..], 10, true, false),
            Err(NotText::InvalidUtf8(0))
        );
    }

    #[test]
    fn short_read_drops_partial_tail() {
        let data = "ab€".as_bytes();
        let d = decode_chunk(&data[..4], 100, false, false).unwrap();
        assert_eq!(d.text, "ab");
        assert_eq!(d.consumed, 2);
        // A complete character at the end of a short read is kept.
        let d = decode_chunk(data, 100, false, false).unwrap();
        assert_eq!(d.text, "ab€");
    }

    #[test]
    fn binary_is_detected() {
        assert_eq!(
            decode_chunk(b"ab\0cd", 100, true, false),
            Err(NotText::Nul(2))
        );
        assert_eq!(
            decode_chunk(b"ab\xffcd", 100, true, false),
            Err(NotText::InvalidUtf8(2))
        );
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0"));
        assert!(!looks_binary(b"plain text"));
    }

    #[test]
    fn shorten_cuts_on_characters() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("ééé", 2), "éé…");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.md", "README.md"));
        assert!(!glob_match("*.md", "README.mdx"));
        assert!(glob_match("README*", "README"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b", "xxaxxbxx"));
        assert!(glob_match("é?", "éé"));
        assert!(glob_match("**x", "x"));
    }

    #[test]
    fn matchers() {
        let m = Matcher::new("todo", false, false);
        assert!(m.matches("// TODO: fix"));
        let m = Matcher::new("todo", true, false);
        assert!(!m.matches("// TODO: fix"));
        let m = Matcher::new("*.RS", false, true);
        assert!(m.matches("main.rs"));
        let m = Matcher::new("*.rs", false, false);
        assert!(!m.matches("main.rs"));
        assert!(m.matches("a*.rs"));
        let m = Matcher::new("main", false, true);
        assert!(m.matches("main.rs"));
    }
}
