//! A parser for Java `.properties` text, the format of RocketMQ's `broker.conf`.
//!
//! Supported, as `java.util.Properties.load` does: `#` and `!` comment lines, `key=value`,
//! `key:value` and `key value` separators with whitespace around them, a trailing backslash that
//! continues the logical line, and the escapes `\t \n \r \f \\ \uXXXX` (any other escaped char
//! stands for itself, so `\=` and `\:` put separators into keys).

use std::fmt;

/// One `key = value` pair, with the 1-based line number it started on (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A malformed escape in a properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertiesError {
    pub line: usize,
    pub reason: &'static str,
}

impl fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for PropertiesError {}

/// Parses properties text into pairs, in file order (a later duplicate wins when applied).
pub fn parse_properties(text: &str) -> Result<Vec<Property>, PropertiesError> {
    let mut properties = Vec::new();
    for (line, logical) in logical_lines(text) {
        let trimmed = logical.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let (raw_key, raw_value) = split_key_value(trimmed);
        let key = unescape(raw_key, line)?;
        let value = unescape(raw_value, line)?;
        properties.push(Property { key, value, line });
    }
    Ok(properties)
}

/// Joins physical lines ending in an odd number of backslashes with the next line (whose
/// leading whitespace is dropped), yielding (first physical line number, logical line).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, physical) in text.lines().enumerate() {
        let physical = physical.strip_suffix('\r').unwrap_or(physical);
        let (start_line, mut joined) = match pending.take() {
            Some((start, acc)) => (start, acc + physical.trim_start()),
            None => (index + 1, physical.to_string()),
        };
        let is_comment = {
            let t = joined.trim_start();
            t.starts_with('#') || t.starts_with('!')
        };
        let trailing_backslashes = joined.chars().rev().take_while(|c| *c == '\\').count();
        if !is_comment && trailing_backslashes % 2 == 1 {
            joined.pop();
            pending = Some((start_line, joined));
        } else {
            out.push((start_line, joined));
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out
}

/// Splits at the first unescaped `=`, `:` or whitespace; whitespace around the separator and
/// one `=`/`:` after whitespace are consumed, as Java does.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut key_end = line.len();
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
    let key_end = key_end.min(line.len());
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(after) = rest.strip_prefix(['=', ':']) {
        rest = after.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
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
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or(PropertiesError {
                        line,
                        reason: "malformed \\uXXXX escape",
                    })?;
                out.push(code);
            }
            Some(other) => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_properties(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text = "# comment\n! also\n\nbrokerName=broker-a\nbrokerId : 0\nlistenPort 10911\n  deleteWhen=04  \n";
        assert_eq!(
            pairs(text),
            vec![
                pair("brokerName", "broker-a"),
                pair("brokerId", "0"),
                pair("listenPort", "10911"),
                pair("deleteWhen", "04  "),
            ]
        );
    }

    #[test]
    fn continuation_lines_and_escapes() {
        let text = "namesrvAddr=127.0.0.1:9876;\\\n    127.0.0.1:9877\na\\=b=c\\u0041\\t\r\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("namesrvAddr", "127.0.0.1:9876;127.0.0.1:9877"),
                pair("a=b", "cA\t"),
            ]
        );
    }

    #[test]
    fn key_without_value_and_line_numbers() {
        let props = parse_properties("\n\nlonely\nx=1").unwrap();
        assert_eq!(props[0].key, "lonely");
        assert_eq!(props[0].value, "");
        assert_eq!(props[0].line, 3);
        assert_eq!(props[1].line, 4);
    }

    #[test]
    fn bad_unicode_escape_is_an_error_with_its_line() {
        let err = parse_properties("ok=1\nbad=\\u12G4\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn comment_ending_in_backslash_does_not_swallow_the_next_line() {
        assert_eq!(pairs("# note \\\nx=1"), vec![pair("x", "1")]);
    }
}
