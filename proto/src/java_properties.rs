//! Java `.properties` text, as `java.util.Properties.load` reads it: the one parser behind the
//! broker's `broker.conf`, the name server's `namesrv.properties` and the tuner (design §10).
//!
//! The rules:
//!
//! * Lines end at `\n`, `\r` or `\r\n`. A line whose first non-blank character is `#` or `!` is a
//!   comment; blank lines are skipped. Blanks are space, tab and form feed.
//! * A line ending in an odd number of backslashes continues on the next line, whose leading
//!   blanks are dropped. A comment line never continues.
//! * The key ends at the first unescaped `=`, `:` or blank. Blanks around the separator and one
//!   `=` or `:` after blanks are consumed; the rest of the line, trailing blanks included, is
//!   the value. A line with only a key has the empty value.
//! * Escapes in keys and values: `\t \n \r \f`, `\uXXXX`, and `\` before any other character
//!   stands for that character (so `\=`, `\:`, `\ ` and `\#` put them into a key).
//!
//! One departure: the text is UTF-8 (Java's `load(InputStream)` reads ISO-8859-1); ASCII files,
//! which is what RocketMQ ships, read identically. Pure: no I/O, the caller hands in the text.

use std::fmt::Write as _;

/// One `key = value` pair and the 1-based line it starts on (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Text that is not valid properties: only a malformed `\uXXXX` escape is (Java throws
/// `IllegalArgumentException` for it; everything else has a meaning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct PropertiesError {
    pub line: usize,
    pub reason: &'static str,
}

/// The characters Java counts as blanks in properties text.
const BLANKS: [char; 3] = [' ', '\t', '\x0c'];

/// Parses properties text into its pairs in file order (a later duplicate wins when applied).
pub fn parse(text: &str) -> Result<Vec<Property>, PropertiesError> {
    let mut properties = Vec::new();
    for (line, logical) in logical_lines(text) {
        let (raw_key, raw_value) = split_key_value(&logical);
        properties.push(Property {
            key: unescape(raw_key, line)?,
            value: unescape(raw_value, line)?,
            line,
        });
    }
    Ok(properties)
}

/// Splits text at `\n`, `\r` and `\r\n`, numbering lines from 1.
fn physical_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\n', '\r']) {
            Some(end) => {
                let skip = if current[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + skip..]);
                Some(&current[..end])
            }
            None => {
                rest = None;
                (!current.is_empty()).then_some(current)
            }
        }
    })
    .enumerate()
    .map(|(index, line)| (index + 1, line))
}

/// The logical lines that hold a pair: comments and blank lines dropped, continuations joined
/// (each continuation's leading blanks dropped). Yields (first physical line, text without
/// leading blanks).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (number, physical) in physical_lines(text) {
        let stripped = physical.trim_start_matches(BLANKS);
        let (start, mut joined) = match pending.take() {
            Some((start, so_far)) => (start, so_far + stripped),
            None if stripped.is_empty() || stripped.starts_with(['#', '!']) => continue,
            None => (number, stripped.to_owned()),
        };
        let trailing_backslashes = joined.bytes().rev().take_while(|b| *b == b'\\').count();
        if trailing_backslashes % 2 == 1 {
            joined.pop();
            pending = Some((start, joined));
        } else {
            out.push((start, joined));
        }
    }
    out.extend(pending);
    out
}

/// Splits a logical line (no leading blanks) at the first unescaped `=`, `:` or blank.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut key_end = line.len();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    // An escape as the last byte steps past the end; the key is then the whole line.
    let key_end = key_end.min(line.len());
    let mut rest = line[key_end..].trim_start_matches(BLANKS);
    if let Some(after) = rest.strip_prefix(['=', ':']) {
        rest = after.trim_start_matches(BLANKS);
    }
    (&line[..key_end], rest)
}

fn unescape(raw: &str, line: usize) -> Result<String, PropertiesError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // A lone backslash at the very end of the text: Java drops it.
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => out.push(unicode_escape(&mut chars, line)?),
            Some(other) => out.push(other),
        }
    }
    Ok(out)
}

/// The four hex digits after `\u`. A UTF-16 surrogate pair written as two escapes (how Java's
/// `store` writes characters outside the BMP) is combined into one character.
fn unicode_escape(chars: &mut std::str::Chars<'_>, line: usize) -> Result<char, PropertiesError> {
    let malformed = PropertiesError {
        line,
        reason: "malformed \\uXXXX escape",
    };
    let unit = hex4(chars).ok_or(malformed.clone())?;
    if !(0xD800..0xDC00).contains(&unit) {
        return char::from_u32(unit).ok_or(malformed);
    }
    let mut lookahead = chars.clone();
    let low = (lookahead.next() == Some('\\') && lookahead.next() == Some('u'))
        .then(|| hex4(&mut lookahead))
        .flatten()
        .filter(|low| (0xDC00..0xE000).contains(low));
    match low {
        Some(low) => {
            *chars = lookahead;
            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)).ok_or(malformed)
        }
        None => Err(PropertiesError {
            line,
            reason: "unpaired UTF-16 surrogate in \\uXXXX escape",
        }),
    }
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut value = 0;
    for _ in 0..4 {
        value = value * 16 + chars.next()?.to_digit(16)?;
    }
    Some(value)
}

/// Writes `key=value` and a newline the way Java's `Properties.store` escapes them, so that
/// [`parse`] reads back exactly `key` and `value`.
pub fn write_pair(out: &mut String, key: &str, value: &str) {
    escape_into(out, key, true);
    out.push('=');
    escape_into(out, value, false);
    out.push('\n');
}

fn escape_into(out: &mut String, text: &str, is_key: bool) {
    for (index, c) in text.chars().enumerate() {
        match c {
            // A value's inner blanks are safe; its leading ones and every blank of a key are not.
            ' ' if is_key || index == 0 => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text = "# comment\n! also\n\nbrokerName=broker-a\nbrokerId : 0\nlistenPort 10911\n\
                    \t deleteWhen=04  \nflag\t=\t:x\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("brokerName", "broker-a"),
                pair("brokerId", "0"),
                pair("listenPort", "10911"),
                pair("deleteWhen", "04  "),
                pair("flag", ":x"),
            ]
        );
    }

    #[test]
    fn continuation_lines_and_escapes() {
        let text = "namesrvAddr=127.0.0.1:9876;\\\n    127.0.0.1:9877\na\\=b=c\\u0041\\t\r\n\
                    x\\ y = \\#not a comment\\\\\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("namesrvAddr", "127.0.0.1:9876;127.0.0.1:9877"),
                pair("a=b", "cA\t"),
                pair("x y", "#not a comment\\"),
            ]
        );
    }

    #[test]
    fn carriage_returns_alone_end_lines_too() {
        assert_eq!(
            pairs("a=1\rb=2\r\nc=3\\\r  4"),
            vec![pair("a", "1"), pair("b", "2"), pair("c", "34")]
        );
    }

    #[test]
    fn a_continued_line_starting_with_hash_is_not_a_comment() {
        assert_eq!(pairs("k=a\\\n  #b\n"), vec![pair("k", "a#b")]);
    }

    #[test]
    fn key_without_value_and_line_numbers() {
        let props = parse("\n\nlonely\nx=1\\\n2\ny").unwrap();
        assert_eq!(props[0].key, "lonely");
        assert_eq!(props[0].value, "");
        assert_eq!(props[0].line, 3);
        assert_eq!((props[1].line, props[1].value.as_str()), (4, "12"));
        assert_eq!(props[2].line, 6);
    }

    #[test]
    fn bad_unicode_escapes_are_errors_with_their_line() {
        assert_eq!(parse("ok=1\nbad=\\u12G4\n").unwrap_err().line, 2);
        assert!(parse("bad=\\u12").is_err());
        assert!(parse("bad=\\uD800x").is_err());
        assert_eq!(pairs("smile=\\uD83D\\uDE00"), vec![pair("smile", "😀")]);
    }

    #[test]
    fn comment_ending_in_backslash_does_not_swallow_the_next_line() {
        assert_eq!(pairs("# note \\\nx=1"), vec![pair("x", "1")]);
    }

    #[test]
    fn trailing_backslash_at_the_end_of_the_text() {
        assert_eq!(pairs("k=v\\"), vec![pair("k", "v")]);
        assert_eq!(pairs("k\\"), vec![pair("k", "")]);
    }

    #[test]
    fn written_pairs_read_back() {
        let cases = [
            ("plain", "value"),
            ("with space", " lead and trail "),
            ("sep=:#!", "a=b:c#d!e"),
            ("ctl", "tab\tnl\ncr\rff\x0cnul\u{0}"),
            ("back\\slash", "\\"),
            ("uni", "é😀"),
            ("", ""),
        ];
        let mut text = String::new();
        for (key, value) in cases {
            write_pair(&mut text, key, value);
        }
        let read: Vec<(String, String)> = pairs(&text);
        let expected: Vec<(String, String)> = cases.iter().map(|(k, v)| pair(k, v)).collect();
        assert_eq!(read, expected, "{text}");
    }
}
