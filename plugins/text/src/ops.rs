//! The text tools' logic, over the WIT types, unit-tested natively.
//!
//! Positions and lengths reported to the caller count Unicode scalar values
//! (`char`s). Error messages are read by a language model: each says what was wrong
//! and what to pass instead.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use crate::{
    FindResult, LetterCase, MatchOptions, ReplaceArgs, Separator, TextMatch, TextStats, TransformOp,
};

/// Largest accepted `text`, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 1_000_000;
/// Largest result, estimated as JSON bytes, kept under the host's default 1 MiB cap.
pub const MAX_OUTPUT_BYTES: usize = 1_000_000;
/// Most transformation steps in one call.
pub const MAX_OPS: usize = 100;
/// Longest `find` pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 1000;
/// Default and largest `max-results` of `find`.
const DEFAULT_MAX_RESULTS: u32 = 100;
const MAX_RESULTS: u32 = 10_000;
/// Default and largest `top` of `count-words`.
const DEFAULT_TOP: u32 = 20;
const MAX_TOP: u32 = 10_000;
/// Lines longer than this are shortened in `find` contexts.
const CONTEXT_CHARS: usize = 160;

fn check_text(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "`text` is {} bytes; the limit is {MAX_TEXT_BYTES} bytes. Pass a smaller part of the \
             text and combine the results.",
            text.len()
        ));
    }
    Ok(())
}

/// Bytes `s` takes as a JSON string, quotes included.
fn json_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

fn check_output(json_bytes: usize, advice: &str) -> Result<(), String> {
    if json_bytes > MAX_OUTPUT_BYTES {
        return Err(format!(
            "the result would be about {json_bytes} bytes, over the {MAX_OUTPUT_BYTES}-byte limit \
             for results. {advice}"
        ));
    }
    Ok(())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------
// Words, sentences, paragraphs

/// The words of `text` as byte ranges: runs of alphanumerics, with single inner
/// apostrophes or hyphens joining two runs (`don't`, `well-known`).
fn word_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut start: Option<usize> = None;
    let mut end = 0;
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
            end = i + c.len_utf8();
        } else if start.is_some()
            && matches!(c, '\'' | '’' | '-' | '‐')
            && chars.peek().is_some_and(|(_, next)| next.is_alphanumeric())
        {
            // A joiner inside a word; the next alphanumeric extends it.
        } else if let Some(s) = start.take() {
            words.push((s, end));
        }
    }
    if let Some(s) = start {
        words.push((s, end));
    }
    words
}

fn words(text: &str) -> Vec<&str> {
    word_ranges(text)
        .into_iter()
        .map(|(s, e)| &text[s..e])
        .collect()
}

/// Abbreviations after which a `.` does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "eg", "ie", "inc", "ltd", "co",
    "corp", "no", "fig", "approx", "dept", "est", "mt", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "nov", "dec", "cf", "al", "vol", "p", "pp",
];

/// Byte ranges of the sentences of `text`, trimmed, each holding at least one
/// letter or digit. A sentence ends after `.`, `!`, `?` or `…` (plus closing quotes or
/// brackets) followed by whitespace or the end, or at a blank line; not when the next
/// word starts in lower case, nor at a single `.` after a common abbreviation or a
/// lone letter.
fn sentence_ranges(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let push = |ranges: &mut Vec<(usize, usize)>, from: usize, to: usize| {
        let piece = &text[from..to];
        if piece.chars().any(char::is_alphanumeric) {
            let trimmed_start = from + (piece.len() - piece.trim_start().len());
            let trimmed_end = from + piece.trim_end().len();
            ranges.push((trimmed_start, trimmed_end));
        }
    };
    while i < chars.len() {
        let (pos, c) = chars[i];
        // A blank line ends a sentence.
        if c == '\n' {
            let mut j = i + 1;
            while j < chars.len() && chars[j].1 != '\n' && chars[j].1.is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j].1 == '\n' {
                push(&mut ranges, start, pos);
                start = chars[j].0;
                i = j + 1;
                continue;
            }
        }
        if matches!(c, '.' | '!' | '?' | '…') {
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j].1, '.' | '!' | '?' | '…') {
                j += 1;
            }
            while j < chars.len() && matches!(chars[j].1, '"' | '\'' | '”' | '’' | ')' | ']' | '»')
            {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(p, _)| p);
            let at_end = j == chars.len();
            let before_space = chars.get(j).is_some_and(|&(_, n)| n.is_whitespace());
            let continues = before_space && next_word_is_lowercase(&chars[j..]);
            let abbreviation = c == '.' && j == i + 1 && is_abbreviation(&text[..pos]);
            if (at_end || before_space) && !continues && !abbreviation {
                push(&mut ranges, start, end);
                start = end;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    push(&mut ranges, start, text.len());
    ranges
}

/// Whether the word just before a single `.` (the end of `before`) is an
/// abbreviation such as `Dr` or `e.g`, or a lone letter such as an initial.
fn is_abbreviation(before: &str) -> bool {
    let mut word: Vec<char> = before
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '.')
        .collect();
    word.reverse();
    let word: String = word
        .into_iter()
        .filter(|c| *c != '.')
        .collect::<String>()
        .to_lowercase();
    let single_letter = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
    single_letter || ABBREVIATIONS.contains(&word.as_str())
}

/// Whether the next word in `rest` starts with a lower-case letter, as after `e.g.`,
/// `p.m.` or `...` inside a sentence.
fn next_word_is_lowercase(rest: &[(usize, char)]) -> bool {
    rest.iter()
        .map(|&(_, c)| c)
        .find(|c| !c.is_whitespace())
        .is_some_and(char::is_lowercase)
}

/// Byte ranges of the paragraphs: blocks separated by blank lines, trimmed.
fn paragraph_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            if let Some(s) = start.take() {
                ranges.push((s, end));
            }
        } else {
            let lead = line.len() - line.trim_start().len();
            start.get_or_insert(offset + lead);
            end = offset + line.trim_end().len();
        }
        offset += line.len();
    }
    if let Some(s) = start {
        ranges.push((s, end));
    }
    ranges
}

fn line_count(text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        text.matches('\n').count() + usize::from(!text.ends_with('\n'))
    }
}

// ---------------------------------------------------------------------------
// stats

pub fn stats(text: &str) -> Result<TextStats, String> {
    check_text(text)?;
    let words = words(text);
    let unique: HashSet<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let lengths: Vec<usize> = words.iter().map(|w| w.chars().count()).collect();
    let total_length: usize = lengths.iter().sum();
    let average = if words.is_empty() {
        0.0
    } else {
        (total_length as f64 / words.len() as f64 * 100.0).round() / 100.0
    };
    let mut longest: Option<(&str, usize)> = None;
    for (word, &length) in words.iter().zip(&lengths) {
        if longest.is_none_or(|(_, best)| length > best) {
            longest = Some((word, length));
        }
    }
    Ok(TextStats {
        characters: count(text.chars().count()),
        non_space_characters: count(text.chars().filter(|c| !c.is_whitespace()).count()),
        bytes: count(text.len()),
        words: count(words.len()),
        unique_words: count(unique.len()),
        lines: count(line_count(text)),
        sentences: count(sentence_ranges(text).len()),
        paragraphs: count(paragraph_ranges(text).len()),
        average_word_length: average,
        longest_word: longest.map(|(w, _)| w.to_string()),
        reading_time_seconds: count((words.len() * 60).div_ceil(200)),
    })
}

// ---------------------------------------------------------------------------
// transform

pub fn transform(text: &str, ops: &[TransformOp]) -> Result<String, String> {
    check_text(text)?;
    if ops.len() > MAX_OPS {
        return Err(format!(
            "`ops` has {} steps; at most {MAX_OPS} are allowed per call. Split them over several calls.",
            ops.len()
        ));
    }
    let mut current = text.to_string();
    for (index, op) in ops.iter().enumerate() {
        let step = index + 1;
        current = apply(&current, op).map_err(|e| format!("step {step} of `ops`: {e}"))?;
        if current.len() > MAX_OUTPUT_BYTES {
            return Err(format!(
                "step {step} of `ops` made the text {} bytes long, over the {MAX_OUTPUT_BYTES}-byte \
                 limit. Transform a smaller text or make fewer or shorter replacements.",
                current.len()
            ));
        }
    }
    check_output(
        json_len(&current),
        "Transform a smaller part of the text, or shorten it with a `truncate` step.",
    )?;
    Ok(current)
}

fn apply(text: &str, op: &TransformOp) -> Result<String, String> {
    Ok(match op {
        TransformOp::Trim => text.trim().to_string(),
        TransformOp::CollapseWhitespace => text.split_whitespace().collect::<Vec<_>>().join(" "),
        TransformOp::Reverse => text.chars().rev().collect(),
        TransformOp::SortLines => {
            let mut lines: Vec<&str> = text.lines().collect();
            lines.sort_by(|a, b| natural_cmp(a, b));
            join_lines(&lines, text)
        }
        TransformOp::UniqueLines => {
            let mut seen = HashSet::new();
            let lines: Vec<&str> = text.lines().filter(|line| seen.insert(*line)).collect();
            join_lines(&lines, text)
        }
        TransformOp::ToCase(case) => to_case(text, *case),
        TransformOp::Replace(args) => replace(text, args)?,
        TransformOp::Truncate(n) => text.chars().take(*n as usize).collect(),
        TransformOp::Wrap(width) => {
            if *width == 0 {
                return Err("`wrap` width must be at least 1, e.g. `{\"wrap\": 80}`.".into());
            }
            wrap(text, *width as usize)
        }
    })
}

/// Joins lines with `\n`, keeping a final line break if the original had one.
fn join_lines(lines: &[&str], original: &str) -> String {
    let mut out = lines.join("\n");
    if original.ends_with('\n') && !lines.is_empty() {
        out.push('\n');
    }
    out
}

/// Natural order: case-insensitive, digit runs compared by numeric value; ties broken
/// by plain code-point order so that the sort is total and stable.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let mut x = a.chars().peekable();
    let mut y = b.chars().peekable();
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let take = |it: &mut std::iter::Peekable<std::str::Chars>| {
                    let mut digits = String::new();
                    while let Some(c) = it.peek().copied().filter(char::is_ascii_digit) {
                        digits.push(c);
                        it.next();
                    }
                    digits
                };
                let (m, n) = (take(&mut x), take(&mut y));
                let (m, n) = (m.trim_start_matches('0'), n.trim_start_matches('0'));
                let order = m.len().cmp(&n.len()).then_with(|| m.cmp(n));
                if order != Ordering::Equal {
                    return order;
                }
            }
            (Some(c), Some(d)) => {
                let order = c.to_lowercase().cmp(d.to_lowercase());
                if order != Ordering::Equal {
                    return order;
                }
                x.next();
                y.next();
            }
        }
    }
}

fn to_case(text: &str, case: LetterCase) -> String {
    match case {
        LetterCase::Upper => text.to_uppercase(),
        LetterCase::Lower => text.to_lowercase(),
        LetterCase::Title => title_case(text),
        LetterCase::Sentence => sentence_case(text),
        LetterCase::Snake => identifier_words(text).join("_").to_lowercase(),
        LetterCase::Kebab => identifier_words(text).join("-").to_lowercase(),
        LetterCase::Constant => identifier_words(text).join("_").to_uppercase(),
        LetterCase::Camel | LetterCase::Pascal => {
            let mut out = String::new();
            for (i, word) in identifier_words(text).iter().enumerate() {
                if i == 0 && case == LetterCase::Camel {
                    out.push_str(&word.to_lowercase());
                } else {
                    out.push_str(&capitalize(word));
                }
            }
            out
        }
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    }
}

fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_word = false;
    let mut previous_alnum = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if in_word {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
            previous_alnum = true;
        } else {
            out.push(c);
            // An apostrophe inside a word (`don't`) does not start a new word.
            in_word = previous_alnum && matches!(c, '\'' | '’');
            previous_alnum = false;
        }
    }
    out
}

fn sentence_case(text: &str) -> String {
    let starts: HashSet<usize> = sentence_ranges(text).into_iter().map(|(s, _)| s).collect();
    let mut out = String::with_capacity(text.len());
    let mut capitalize_next = false;
    for (i, c) in text.char_indices() {
        if starts.contains(&i) {
            capitalize_next = true;
        }
        if capitalize_next && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
            capitalize_next = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Words for programming-style cases: split at non-alphanumerics, at lower-to-upper
/// changes (`fooBar`), and before the last capital of an acronym (`HTTPServer`).
fn identifier_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for chunk in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|s| !s.is_empty())
    {
        let chars: Vec<char> = chunk.chars().collect();
        let mut current = String::new();
        for (i, &c) in chars.iter().enumerate() {
            if i > 0 && c.is_uppercase() {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                if prev.is_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_uppercase() && next_lower)
                {
                    words.push(std::mem::take(&mut current));
                }
            }
            current.push(c);
        }
        words.push(current);
    }
    // Apostrophes would otherwise split `don't` into `don` and `t`.
    merge_apostrophe_tails(text, words)
}

/// Re-joins single-letter tails produced by apostrophes (`don't` → `dont`).
fn merge_apostrophe_tails(text: &str, words: Vec<String>) -> Vec<String> {
    if !text.contains(['\'', '’']) {
        return words;
    }
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut rest = text;
    for word in words {
        let at = rest.find(word.as_str()).unwrap_or(0);
        let gap = &rest[..at];
        let joined_by_apostrophe = !out.is_empty() && (gap == "'" || gap == "’");
        rest = &rest[at + word.len()..];
        match out.last_mut() {
            Some(last) if joined_by_apostrophe => last.push_str(&word),
            _ => out.push(word),
        }
    }
    out
}

fn replace(text: &str, args: &ReplaceArgs) -> Result<String, String> {
    if args.pattern.is_empty() {
        return Err("`replace` needs a non-empty `pattern`, the exact text to look for.".into());
    }
    let limit = args.max_count.map_or(usize::MAX, |n| n as usize);
    let finder = Finder::literal(text, &args.pattern, args.case_insensitive.unwrap_or(false));
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (replaced, (start, end)) in finder.matches().enumerate() {
        if replaced >= limit {
            break;
        }
        out.push_str(&text[last..start]);
        out.push_str(&args.replacement);
        last = end;
        if out.len() > MAX_OUTPUT_BYTES {
            return Err(format!(
                "replacing `{}` makes the text longer than {MAX_OUTPUT_BYTES} bytes; set `max-count` \
                 or use a shorter replacement.",
                args.pattern
            ));
        }
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Greedy word wrap of each line to `width` characters.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width.max(1));
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        let indent_len = line.len() - line.trim_start().len();
        let indent = &line[..indent_len];
        let mut current = 0;
        out.push_str(indent);
        current += indent.chars().count();
        let mut first = true;
        for word in line.split_whitespace() {
            let len = word.chars().count();
            if !first && current + 1 + len > width {
                out.push('\n');
                out.push_str(indent);
                current = indent.chars().count();
                first = true;
            }
            if !first {
                out.push(' ');
                current += 1;
            }
            out.push_str(word);
            current += len;
            first = false;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// split

pub fn split(text: &str, by: &Separator, limit: Option<u32>) -> Result<Vec<String>, String> {
    check_text(text)?;
    if limit == Some(0) {
        return Err("`limit` must be at least 1; omit it to get every piece.".into());
    }
    let limit = limit.map_or(usize::MAX, |n| n as usize);
    let pieces: Vec<&str> = match by {
        Separator::Whitespace => text.split_whitespace().take(limit).collect(),
        Separator::Lines => text.lines().take(limit).collect(),
        Separator::Sentences => sentence_ranges(text)
            .into_iter()
            .take(limit)
            .map(|(s, e)| &text[s..e])
            .collect(),
        Separator::Paragraphs => paragraph_ranges(text)
            .into_iter()
            .take(limit)
            .map(|(s, e)| &text[s..e])
            .collect(),
        Separator::Custom(separator) => {
            if separator.is_empty() {
                return Err(
                    "the `custom` separator must not be empty, e.g. `{\"custom\": \",\"}`. \
                            To split into words use `\"whitespace\"`."
                        .into(),
                );
            }
            text.split(separator.as_str()).take(limit).collect()
        }
    };
    let size = 2 + pieces.iter().map(|p| json_len(p) + 1).sum::<usize>();
    check_output(
        size,
        "Pass `limit` to get only the first pieces, or split a smaller text.",
    )?;
    Ok(pieces.into_iter().map(str::to_string).collect())
}

// ---------------------------------------------------------------------------
// find

/// Literal or regular-expression matcher over one text, yielding byte ranges.
enum Finder<'t> {
    Literal {
        text: &'t str,
        /// The text searched: `text` itself, or its case-folded copy.
        haystack: std::borrow::Cow<'t, str>,
        needle: String,
        /// For a folded haystack: byte offset in `text` of each folded char, by
        /// folded byte offset (only char starts are meaningful), plus the end.
        map: Option<Vec<usize>>,
    },
    Regex {
        text: &'t str,
        regex: regex_lite::Regex,
    },
}

/// Lower-cases `c` when that gives exactly one character, so that folding keeps a
/// one-to-one correspondence of characters.
fn fold(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

impl<'t> Finder<'t> {
    fn literal(text: &'t str, pattern: &str, case_insensitive: bool) -> Self {
        if !case_insensitive {
            return Finder::Literal {
                text,
                haystack: text.into(),
                needle: pattern.to_string(),
                map: None,
            };
        }
        let mut folded = String::with_capacity(text.len());
        let mut map = Vec::with_capacity(text.len() + 1);
        for (i, c) in text.char_indices() {
            let f = fold(c);
            map.extend(std::iter::repeat_n(i, f.len_utf8()));
            folded.push(f);
        }
        map.push(text.len());
        Finder::Literal {
            text,
            haystack: folded.into(),
            needle: pattern.chars().map(fold).collect(),
            map: Some(map),
        }
    }

    fn regex(text: &'t str, pattern: &str, case_insensitive: bool) -> Result<Self, String> {
        let regex = regex_lite::RegexBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .build()
            .map_err(|e| {
                format!(
                    "`pattern` is not a valid regular expression: {e}. Escape special characters \
                     such as `.`, `(` or `?` with `\\`, or leave out the `regex` option to search \
                     for the text exactly."
                )
            })?;
        Ok(Finder::Regex { text, regex })
    }

    fn text(&self) -> &'t str {
        match self {
            Finder::Literal { text, .. } | Finder::Regex { text, .. } => text,
        }
    }

    /// Non-overlapping, non-empty matches as byte ranges of the original text.
    fn matches(&self) -> Box<dyn Iterator<Item = (usize, usize)> + '_> {
        match self {
            Finder::Literal {
                haystack,
                needle,
                map,
                ..
            } => {
                let to_text = move |i: usize| map.as_ref().map_or(i, |m| m[i]);
                Box::new(
                    haystack
                        .match_indices(needle.as_str())
                        .map(move |(i, m)| (to_text(i), to_text(i + m.len()))),
                )
            }
            Finder::Regex { regex, text } => Box::new(
                regex
                    .find_iter(text)
                    .filter(|m| !m.is_empty())
                    .map(|m| (m.start(), m.end())),
            ),
        }
    }

    /// Byte ranges of the matches whose ends are word boundaries, retrying one
    /// character later when a literal candidate is not a whole word (so `cat` is found
    /// in `cats cat`).
    fn whole_word_matches(&self) -> Vec<(usize, usize)> {
        let text = self.text();
        let is_word = |c: char| c.is_alphanumeric() || c == '_';
        let boundary = |start: usize, end: usize| {
            !text[..start].chars().next_back().is_some_and(is_word)
                && !text[end..].chars().next().is_some_and(is_word)
        };
        match self {
            Finder::Regex { .. } => self.matches().filter(|&(s, e)| boundary(s, e)).collect(),
            Finder::Literal {
                haystack,
                needle,
                map,
                ..
            } => {
                let to_text = |i: usize| map.as_ref().map_or(i, |m| m[i]);
                let mut found = Vec::new();
                let mut from = 0;
                while let Some(at) = haystack[from..].find(needle.as_str()) {
                    let (hs, he) = (from + at, from + at + needle.len());
                    let (s, e) = (to_text(hs), to_text(he));
                    if boundary(s, e) {
                        found.push((s, e));
                        from = he;
                    } else {
                        from = hs + haystack[hs..].chars().next().map_or(1, char::len_utf8);
                    }
                }
                found
            }
        }
    }
}

pub fn find(
    text: &str,
    pattern: &str,
    options: MatchOptions,
    max_results: Option<u32>,
) -> Result<FindResult, String> {
    check_text(text)?;
    if pattern.is_empty() {
        return Err(
            "`pattern` is empty; pass the text (or regular expression) to look for.".into(),
        );
    }
    let pattern_chars = pattern.chars().count();
    if pattern_chars > MAX_PATTERN_CHARS {
        return Err(format!(
            "`pattern` is {pattern_chars} characters; at most {MAX_PATTERN_CHARS} are allowed."
        ));
    }
    let max_results = max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if max_results == 0 || max_results > MAX_RESULTS {
        return Err(format!(
            "`max-results` must be between 1 and {MAX_RESULTS}, but is {max_results}; `total` \
             always counts every match."
        ));
    }
    let case_insensitive = options.contains(MatchOptions::CASE_INSENSITIVE);
    let finder = if options.contains(MatchOptions::REGEX) {
        Finder::regex(text, pattern, case_insensitive)?
    } else {
        Finder::literal(text, pattern, case_insensitive)
    };
    let ranges: Vec<(usize, usize)> = if options.contains(MatchOptions::WHOLE_WORD) {
        finder.whole_word_matches()
    } else {
        finder.matches().collect()
    };

    let index = TextIndex::new(text);
    let mut matches = Vec::new();
    let mut size = 40;
    for &(start, end) in ranges.iter().take(max_results as usize) {
        let found = index.describe(start, end);
        size += json_len(&found.text) + json_len(&found.context) + 100;
        matches.push(found);
    }
    check_output(size, "Lower `max-results` or search a smaller text.")?;
    Ok(FindResult {
        total: count(ranges.len()),
        matches,
    })
}

/// Character positions and line starts of a text, for describing matches.
struct TextIndex<'t> {
    text: &'t str,
    /// Byte offset of each char, in order.
    char_starts: Vec<usize>,
    /// Byte offset of each line's start.
    line_starts: Vec<usize>,
}

impl<'t> TextIndex<'t> {
    fn new(text: &'t str) -> Self {
        let char_starts = text.char_indices().map(|(i, _)| i).collect();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            text,
            char_starts,
            line_starts,
        }
    }

    /// Character index of byte offset `byte` (a char boundary or the end).
    fn char_index(&self, byte: usize) -> usize {
        self.char_starts.partition_point(|&b| b < byte)
    }

    fn describe(&self, start: usize, end: usize) -> TextMatch {
        let line_index = self.line_starts.partition_point(|&b| b <= start) - 1;
        let line_start = self.line_starts[line_index];
        let line_end = self.text[line_start..]
            .find('\n')
            .map_or(self.text.len(), |i| line_start + i);
        let line = self.text[line_start..line_end].trim_end_matches('\r');
        let start_char = self.char_index(start);
        let column = start_char - self.char_index(line_start);
        TextMatch {
            text: self.text[start..end].to_string(),
            start: count(start_char),
            end: count(self.char_index(end)),
            line: count(line_index + 1),
            column: count(column + 1),
            context: context(line, column),
        }
    }
}

/// `line`, or an excerpt of it around character `column` (0-based) when it is long.
fn context(line: &str, column: usize) -> String {
    let length = line.chars().count();
    if length <= CONTEXT_CHARS {
        return line.to_string();
    }
    let from = column.saturating_sub(CONTEXT_CHARS / 3);
    let to = (from + CONTEXT_CHARS).min(length);
    let from = to.saturating_sub(CONTEXT_CHARS);
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    out.extend(line.chars().skip(from).take(to - from));
    if to < length {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------
// slugify

/// ASCII for common Latin letters with diacritics, given in lower case.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ǎ' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ǒ' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ǔ' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

pub fn slugify(text: &str, max_length: Option<u32>) -> Result<String, String> {
    check_text(text)?;
    if max_length == Some(0) {
        return Err("`max-length` must be at least 1; omit it for no limit.".into());
    }
    let mut slug = String::new();
    let mut pending_hyphen = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if matches!(c, '\'' | '’') {
            continue;
        }
        let ascii = if c.is_ascii_alphanumeric() {
            Some(c.encode_utf8(&mut [0; 4]).to_string())
        } else {
            transliterate(c).map(str::to_string)
        };
        match ascii {
            Some(part) => {
                if pending_hyphen && !slug.is_empty() {
                    slug.push('-');
                }
                pending_hyphen = false;
                slug.push_str(&part);
            }
            None => pending_hyphen = true,
        }
    }
    if slug.is_empty() {
        return Err(
            "the text has no letters or digits usable in a slug: only ASCII letters and digits are \
             kept (after removing accents from Latin letters). Pass a title in Latin script."
                .into(),
        );
    }
    if let Some(max) = max_length {
        let max = max as usize;
        if slug.len() > max {
            // Prefer cutting at a hyphen, as long as that keeps something.
            let cut = match slug[..=max].rfind('-') {
                Some(at) if at > 0 => at,
                _ => max,
            };
            slug.truncate(cut);
            while slug.ends_with('-') {
                slug.pop();
            }
        }
    }
    Ok(slug)
}

// ---------------------------------------------------------------------------
// count-words

pub fn count_words(text: &str, top: Option<u32>) -> Result<Vec<(String, u32)>, String> {
    check_text(text)?;
    let top = top.unwrap_or(DEFAULT_TOP);
    if top == 0 || top > MAX_TOP {
        return Err(format!(
            "`top` must be between 1 and {MAX_TOP}, but is {top}."
        ));
    }
    let mut counts: HashMap<String, u32> = HashMap::new();
    for word in words(text) {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    let mut list: Vec<(String, u32)> = counts.into_iter().collect();
    list.sort_by(|(a, m), (b, n)| n.cmp(m).then_with(|| a.cmp(b)));
    list.truncate(top as usize);
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T>(r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| panic!("unexpected error: {e}"))
    }

    #[track_caller]
    fn err_contains<T: std::fmt::Debug>(r: Result<T, String>, needles: &[&str]) {
        let e = r.expect_err("expected an error");
        for needle in needles {
            assert!(e.contains(needle), "error should contain `{needle}`: {e}");
        }
    }

    fn t(text: &str, ops: &[TransformOp]) -> String {
        ok(transform(text, ops))
    }

    fn case(text: &str, c: LetterCase) -> String {
        t(text, &[TransformOp::ToCase(c)])
    }

    #[test]
    fn word_tokens() {
        assert_eq!(
            words("Don't stop—well-known e-mail, 2024!"),
            ["Don't", "stop", "well-known", "e-mail", "2024"]
        );
        assert_eq!(words("  'quoted' -dash- "), ["quoted", "dash"]);
        assert_eq!(
            words("naïve café Ωμέγα 東京"),
            ["naïve", "café", "Ωμέγα", "東京"]
        );
        assert!(words("... --- !!!").is_empty());
    }

    #[test]
    fn stats_of_a_text() {
        let s = ok(stats("Hello world. How are you?"));
        assert_eq!(s.characters, 25);
        assert_eq!(s.non_space_characters, 21);
        assert_eq!(s.bytes, 25);
        assert_eq!(s.words, 5);
        assert_eq!(s.unique_words, 5);
        assert_eq!(s.lines, 1);
        assert_eq!(s.sentences, 2);
        assert_eq!(s.paragraphs, 1);
        assert_eq!(s.average_word_length, 3.8);
        assert_eq!(s.longest_word.as_deref(), Some("Hello"));
        assert_eq!(s.reading_time_seconds, 2);

        let s = ok(stats("Café.\n\nSecond para, the the THE.\n"));
        assert_eq!(s.characters, 33);
        assert_eq!(s.bytes, 34);
        assert_eq!(s.lines, 3);
        assert_eq!(s.paragraphs, 2);
        assert_eq!(s.sentences, 2);
        assert_eq!(s.unique_words, 4);

        let empty = ok(stats(""));
        assert_eq!(
            (
                empty.characters,
                empty.words,
                empty.lines,
                empty.sentences,
                empty.paragraphs
            ),
            (0, 0, 0, 0, 0)
        );
        assert_eq!(empty.average_word_length, 0.0);
        assert_eq!(empty.longest_word, None);
    }

    #[test]
    fn sentences() {
        let split_sentences = |text: &str| ok(split(text, &Separator::Sentences, None));
        assert_eq!(
            split_sentences("One. Two! Three? Four"),
            ["One.", "Two!", "Three?", "Four"]
        );
        assert_eq!(
            split_sentences(
                "Dr. Smith met Mr. Jones, e.g. at 3.30 p.m. today. He said \"Hi!\" Then left..."
            ),
            [
                "Dr. Smith met Mr. Jones, e.g. at 3.30 p.m. today.",
                "He said \"Hi!\"",
                "Then left..."
            ]
        );
        assert_eq!(
            split_sentences("Title\n\nBody text here"),
            ["Title", "Body text here"]
        );
        assert_eq!(
            split_sentences("Wait... what?! Yes."),
            ["Wait... what?!", "Yes."]
        );
        assert_eq!(
            split_sentences("Version 1.2 is out. Get it."),
            ["Version 1.2 is out.", "Get it."]
        );
        assert!(split_sentences("  ...  ").is_empty());
    }

    #[test]
    fn cases() {
        assert_eq!(case("hello World", LetterCase::Upper), "HELLO WORLD");
        assert_eq!(case("Hello WORLD", LetterCase::Lower), "hello world");
        assert_eq!(
            case("the GREAT gatsby's dog-house", LetterCase::Title),
            "The Great Gatsby's Dog-House"
        );
        assert_eq!(
            case("HELLO. HOW ARE YOU? FINE", LetterCase::Sentence),
            "Hello. How are you? Fine"
        );
        assert_eq!(
            case("e.g. THIS one. ok", LetterCase::Sentence),
            "E.g. this one. ok"
        );
        assert_eq!(case("Hello World", LetterCase::Snake), "hello_world");
        assert_eq!(
            case("parseHTTPResponse", LetterCase::Snake),
            "parse_http_response"
        );
        assert_eq!(
            case("  Quarterly Report 2024  ", LetterCase::Kebab),
            "quarterly-report-2024"
        );
        assert_eq!(case("hello world", LetterCase::Camel), "helloWorld");
        assert_eq!(
            case("hello_world-again", LetterCase::Pascal),
            "HelloWorldAgain"
        );
        assert_eq!(case("Hello World", LetterCase::Constant), "HELLO_WORLD");
        assert_eq!(case("don't stop", LetterCase::Snake), "dont_stop");
        assert_eq!(case("version2Beta", LetterCase::Kebab), "version2-beta");
        assert_eq!(case("straße", LetterCase::Upper), "STRASSE");
        assert_eq!(case("", LetterCase::Camel), "");
    }

    #[test]
    fn simple_ops() {
        assert_eq!(t("  a  ", &[TransformOp::Trim]), "a");
        assert_eq!(
            t(" a \n\t b  c ", &[TransformOp::CollapseWhitespace]),
            "a b c"
        );
        assert_eq!(t("abc😀", &[TransformOp::Reverse]), "😀cba");
        assert_eq!(
            t("item 10\nItem 9\napple\n", &[TransformOp::SortLines]),
            "apple\nItem 9\nitem 10\n"
        );
        assert_eq!(t("b\na\nb\nc\na", &[TransformOp::UniqueLines]), "b\na\nc");
        assert_eq!(t("héllo", &[TransformOp::Truncate(2)]), "hé");
        assert_eq!(t("hi", &[TransformOp::Truncate(10)]), "hi");
        assert_eq!(t("unchanged", &[]), "unchanged");
        assert_eq!(
            t(
                "  Quarterly Report 2024  ",
                &[TransformOp::Trim, TransformOp::ToCase(LetterCase::Snake)]
            ),
            "quarterly_report_2024"
        );
    }

    #[test]
    fn natural_sort_order() {
        let mut v = vec!["file10", "File2", "file1", "file02", "b", "A"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["A", "b", "file1", "File2", "file02", "file10"]);
    }

    #[test]
    fn replacing() {
        let r =
            |text: &str, pattern: &str, replacement: &str, max: Option<u32>, ci: Option<bool>| {
                t(
                    text,
                    &[TransformOp::Replace(ReplaceArgs {
                        pattern: pattern.into(),
                        replacement: replacement.into(),
                        max_count: max,
                        case_insensitive: ci,
                    })],
                )
            };
        assert_eq!(r("a-b-c", "-", "+", Some(1), None), "a+b-c");
        assert_eq!(r("a-b-c", "-", "", None, None), "abc");
        assert_eq!(
            r("Cat cat CAT", "cat", "dog", None, Some(true)),
            "dog dog dog"
        );
        assert_eq!(
            r("Cat cat CAT", "cat", "dog", None, Some(false)),
            "Cat dog CAT"
        );
        assert_eq!(
            r("ÉCOLE école", "école", "school", None, Some(true)),
            "school school"
        );
        assert_eq!(r("aaa", "aa", "b", None, None), "ba");
        assert_eq!(r("x", "x", "yy", Some(0), None), "x");
        err_contains(
            transform(
                "x",
                &[
                    TransformOp::Trim,
                    TransformOp::Replace(ReplaceArgs {
                        pattern: String::new(),
                        replacement: "y".into(),
                        max_count: None,
                        case_insensitive: None,
                    }),
                ],
            ),
            &["step 2", "non-empty `pattern`"],
        );
        let big = "a".repeat(150_000);
        err_contains(
            transform(
                &big,
                &[TransformOp::Replace(ReplaceArgs {
                    pattern: "a".into(),
                    replacement: "0123456789".into(),
                    max_count: None,
                    case_insensitive: None,
                })],
            ),
            &["longer than", "max-count"],
        );
    }

    #[test]
    fn wrapping() {
        assert_eq!(
            t("the quick brown fox jumps", &[TransformOp::Wrap(10)]),
            "the quick\nbrown fox\njumps"
        );
        assert_eq!(
            t("a verylongword b", &[TransformOp::Wrap(4)]),
            "a\nverylongword\nb"
        );
        assert_eq!(
            t("  one two three\n\nfour", &[TransformOp::Wrap(9)]),
            "  one two\n  three\n\nfour"
        );
        err_contains(
            transform("x", &[TransformOp::Wrap(0)]),
            &["step 1", "at least 1"],
        );
    }

    #[test]
    fn transform_limits() {
        err_contains(
            transform("x", &vec![TransformOp::Trim; 101]),
            &["101 steps", "at most 100"],
        );
        err_contains(
            transform(&"x".repeat(MAX_TEXT_BYTES + 1), &[]),
            &["1000001 bytes", "limit"],
        );
        // Quotes double in JSON, so a text near the limit can still be too large a result.
        err_contains(
            transform(&"\"".repeat(600_000), &[]),
            &["over the 1000000-byte limit"],
        );
    }

    #[test]
    fn splitting() {
        let s = |text: &str, by: Separator, limit: Option<u32>| ok(split(text, &by, limit));
        assert_eq!(
            s(" a  b\n c ", Separator::Whitespace, None),
            ["a", "b", "c"]
        );
        assert_eq!(s("a\r\n\nb\n", Separator::Lines, None), ["a", "", "b"]);
        assert_eq!(
            s("a,b,,c", Separator::Custom(",".into()), None),
            ["a", "b", "", "c"]
        );
        assert_eq!(s("a::b", Separator::Custom("::".into()), None), ["a", "b"]);
        assert_eq!(
            s("One. Two! Three?", Separator::Sentences, Some(2)),
            ["One.", "Two!"]
        );
        assert_eq!(
            s("p1 l1\np1 l2\n\n \n  p2\n", Separator::Paragraphs, None),
            ["p1 l1\np1 l2", "p2"]
        );
        assert_eq!(s("a b c", Separator::Whitespace, Some(5)), ["a", "b", "c"]);
        assert!(s("", Separator::Whitespace, None).is_empty());
        err_contains(
            split("a", &Separator::Custom(String::new()), None),
            &["must not be empty"],
        );
        err_contains(split("a", &Separator::Lines, Some(0)), &["at least 1"]);
        let many = ",".repeat(400_000);
        err_contains(
            split(&many, &Separator::Custom(",".into()), None),
            &["limit"],
        );
        assert_eq!(
            ok(split(&many, &Separator::Custom(",".into()), Some(3))).len(),
            3
        );
    }

    fn find_all(text: &str, pattern: &str, options: MatchOptions) -> FindResult {
        ok(find(text, pattern, options, None))
    }

    #[test]
    fn finding_literals() {
        let r = find_all(
            "Cats and dogs.\nMy cat sleeps.",
            "cat",
            MatchOptions::CASE_INSENSITIVE | MatchOptions::WHOLE_WORD,
        );
        assert_eq!(r.total, 1);
        let m = &r.matches[0];
        assert_eq!(
            (m.text.as_str(), m.start, m.end, m.line, m.column),
            ("cat", 18, 21, 2, 4)
        );
        assert_eq!(m.context, "My cat sleeps.");

        let r = find_all(
            "Cats and dogs.\nMy cat sleeps.",
            "cat",
            MatchOptions::empty(),
        );
        assert_eq!(r.total, 1);
        let r = find_all(
            "Cats and dogs.\nMy cat sleeps.",
            "cat",
            MatchOptions::CASE_INSENSITIVE,
        );
        assert_eq!(r.total, 2);
        assert_eq!(r.matches[0].text, "Cat");

        // Offsets count characters, not bytes.
        let r = find_all("héllo wörld, wörld", "wörld", MatchOptions::empty());
        assert_eq!(
            (r.matches[0].start, r.matches[0].end, r.matches[1].start),
            (6, 11, 13)
        );
        // Case-insensitive matching of non-ASCII letters keeps offsets right.
        let r = find_all(
            "ΑΒΓ straße STRASSE İx",
            "STRAßE",
            MatchOptions::CASE_INSENSITIVE,
        );
        assert_eq!(
            (r.total, r.matches[0].start, r.matches[0].text.as_str()),
            (1, 4, "straße")
        );
        // Whole words retry after a failed candidate.
        let r = find_all("cats cat", "cat", MatchOptions::WHOLE_WORD);
        assert_eq!((r.total, r.matches[0].start), (1, 5));
        let r = find_all("a_cat cat_ (cat)", "cat", MatchOptions::WHOLE_WORD);
        assert_eq!((r.total, r.matches[0].start), (1, 12));
    }

    #[test]
    fn finding_with_regex() {
        let r = find_all(
            "Due 2024-03-10, paid 2024-04-01.",
            r"\d{4}-\d{2}-\d{2}",
            MatchOptions::REGEX,
        );
        assert_eq!(r.total, 2);
        assert_eq!(r.matches[1].text, "2024-04-01");
        assert_eq!(r.matches[1].start, 21);
        let r = find_all(
            "Error: x\nerror: y",
            "^error",
            MatchOptions::REGEX | MatchOptions::CASE_INSENSITIVE,
        );
        assert_eq!(r.total, 1, "no (?m), so ^ is the text start");
        let r = find_all(
            "Error: x\nerror: y",
            "(?m)^error",
            MatchOptions::REGEX | MatchOptions::CASE_INSENSITIVE,
        );
        assert_eq!(r.total, 2);
        assert_eq!(r.matches[1].line, 2);
        let r = find_all("abc", "x*", MatchOptions::REGEX);
        assert_eq!(r.total, 0, "empty matches are skipped");
        let r = find_all(
            "cat cats",
            "cats?",
            MatchOptions::REGEX | MatchOptions::WHOLE_WORD,
        );
        assert_eq!(r.total, 2);
        err_contains(
            find("abc", "(", MatchOptions::REGEX, None),
            &["not a valid regular expression"],
        );
    }

    #[test]
    fn find_limits_and_context() {
        let text = "ab ".repeat(1000);
        let r = ok(find(&text, "ab", MatchOptions::empty(), Some(3)));
        assert_eq!((r.total, r.matches.len()), (1000, 3));
        let r = ok(find(&text, "ab", MatchOptions::empty(), None));
        assert_eq!(r.matches.len(), 100);
        // A long line is shortened around the match.
        let m = &r.matches[99];
        assert!(
            m.context.starts_with('…') && m.context.ends_with('…'),
            "{}",
            m.context
        );
        assert_eq!(m.context.chars().count(), CONTEXT_CHARS + 2);
        err_contains(
            find("a", "", MatchOptions::empty(), None),
            &["`pattern` is empty"],
        );
        err_contains(
            find("a", "a", MatchOptions::empty(), Some(0)),
            &["between 1 and 10000"],
        );
        err_contains(
            find("a", &"a".repeat(1001), MatchOptions::empty(), None),
            &["1001 characters"],
        );
        let r = find_all("x\r\ny x", "x", MatchOptions::empty());
        assert_eq!(
            (
                r.matches[0].context.as_str(),
                r.matches[1].line,
                r.matches[1].column
            ),
            ("x", 2, 3)
        );
    }

    #[test]
    fn slugs() {
        assert_eq!(
            ok(slugify("Crème Brûlée: Don't Panic!", None)),
            "creme-brulee-dont-panic"
        );
        assert_eq!(ok(slugify("  Hello,   World!!  ", None)), "hello-world");
        assert_eq!(ok(slugify("Straße Ærø Łódź", None)), "strasse-aero-lodz");
        assert_eq!(ok(slugify("Rust 2024 Edition", None)), "rust-2024-edition");
        assert_eq!(
            ok(slugify("hello beautiful world", Some(15))),
            "hello-beautiful"
        );
        assert_eq!(ok(slugify("hello beautiful world", Some(14))), "hello");
        assert_eq!(ok(slugify("supercalifragilistic", Some(5))), "super");
        assert_eq!(ok(slugify("ab cd", Some(3))), "ab");
        assert_eq!(ok(slugify("日本 Tokyo", None)), "tokyo");
        err_contains(slugify("日本語", None), &["no letters or digits"]);
        err_contains(slugify("x", Some(0)), &["at least 1"]);
    }

    #[test]
    fn word_frequencies() {
        assert_eq!(
            ok(count_words("The cat and the hat.", Some(2))),
            [("the".to_string(), 2), ("and".to_string(), 1)]
        );
        let all = ok(count_words("b a b A c", None));
        assert_eq!(
            all,
            [
                ("a".to_string(), 2),
                ("b".to_string(), 2),
                ("c".to_string(), 1)
            ]
        );
        assert!(ok(count_words("", None)).is_empty());
        err_contains(count_words("a", Some(0)), &["between 1 and 10000"]);
    }

    #[test]
    fn json_lengths() {
        assert_eq!(json_len("ab"), 4);
        assert_eq!(json_len("a\"\n"), 7);
        assert_eq!(json_len("\u{1}"), 8);
        assert_eq!(json_len("é"), 4);
    }
}
