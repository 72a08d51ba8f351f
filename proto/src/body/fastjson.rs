//! Normalizer for fastjson's one non-standard output that matters to us: maps with numeric keys
//! written without quotes (`{"brokerAddrs":{0:"127.0.0.1:10911",-1:"..."}}`, reference §1.8).
//!
//! This is deliberately not a JSON parser. It walks the text once, tracking only what it must to
//! know where an object key starts (inside a string or not, object or array nesting), and wraps a
//! bare integer key in quotes. Everything else is copied unchanged and left for `serde_json` to
//! validate. Text without unquoted keys (every standard-JSON body) is returned borrowed, so the
//! common case costs one scan and no allocation.

use std::borrow::Cow;

/// Where the scanner stands relative to the innermost container.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Container {
    /// Inside `{...}`: the next token after `{` or `,` is a key.
    Object,
    /// Inside `[...]`: the next token after `[` or `,` is a value.
    Array,
}

/// Returns `text` with every unquoted integer object key (`0`, `12`, `-3`) wrapped in quotes.
///
/// Input that is not JSON at all is returned in whatever state the walk leaves it; `serde_json`
/// reports the error afterwards. Unquoted keys that are not integers (fastjson's object keys,
/// `{{"brokerName":...}:5}`) are left alone and make the later parse fail, which is the honest
/// answer for the bodies this crate models.
pub fn quote_numeric_keys(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut stack: Vec<Container> = Vec::new();
    // True right after `{` or `,` inside an object: the next non-blank byte starts a key.
    let mut expect_key = false;
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        if byte == b'"' {
            let end = string_end(text, i);
            if let Some(buf) = out.as_mut() {
                buf.extend_from_slice(&text[i..end]);
            }
            expect_key = false;
            i = end;
            continue;
        }
        if expect_key && (byte == b'-' || byte.is_ascii_digit()) {
            let end = integer_end(text, i);
            let has_digits = text[end - 1].is_ascii_digit();
            if has_digits && is_key_followed_by_colon(text, end) {
                let buf = out.get_or_insert_with(|| {
                    let mut copy = Vec::with_capacity(text.len() + 16);
                    copy.extend_from_slice(&text[..i]);
                    copy
                });
                buf.push(b'"');
                buf.extend_from_slice(&text[i..end]);
                buf.push(b'"');
                expect_key = false;
                i = end;
                continue;
            }
        }
        match byte {
            b'{' => {
                stack.push(Container::Object);
                expect_key = true;
            }
            b'[' => {
                stack.push(Container::Array);
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => expect_key = stack.last() == Some(&Container::Object),
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => expect_key = false,
        }
        if let Some(buf) = out.as_mut() {
            buf.push(byte);
        }
        i += 1;
    }
    match out {
        Some(buf) => Cow::Owned(buf),
        None => Cow::Borrowed(text),
    }
}

/// Index one past the closing quote of the string starting at `start` (which holds `"`), or the
/// end of the text if the string is unterminated.
fn string_end(text: &[u8], start: usize) -> usize {
    debug_assert_eq!(text[start], b'"');
    let mut i = start + 1;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// Index one past an optional `-` and the digits that follow it.
fn integer_end(text: &[u8], start: usize) -> usize {
    let mut i = start;
    if text[i] == b'-' {
        i += 1;
    }
    while i < text.len() && text[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// True if, after optional blanks, the next byte is `:`.
fn is_key_followed_by_colon(text: &[u8], end: usize) -> bool {
    let mut i = end;
    while i < text.len() && matches!(text[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i < text.len() && text[i] == b':'
}

#[cfg(test)]
mod tests {
    use super::quote_numeric_keys;
    use std::borrow::Cow;

    fn normalized(text: &str) -> String {
        String::from_utf8(quote_numeric_keys(text.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn standard_json_is_borrowed_unchanged() {
        let text = br#"{"brokerAddrs":{"0":"127.0.0.1:10911"},"n":[1,-2,{"a":3}]}"#;
        assert!(matches!(quote_numeric_keys(text), Cow::Borrowed(_)));
    }

    #[test]
    fn unquoted_keys_are_quoted() {
        assert_eq!(
            normalized(r#"{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"}}"#),
            r#"{"brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"}}"#
        );
    }

    #[test]
    fn negative_and_multi_digit_keys_are_quoted() {
        assert_eq!(
            normalized(r#"{"currIdMap":{-1:"b",-25:"c",1024:"d"}}"#),
            r#"{"currIdMap":{"-1":"b","-25":"c","1024":"d"}}"#
        );
    }

    #[test]
    fn numbers_in_arrays_and_values_are_untouched() {
        let text = r#"{"a":[0,-1,2],"b":-3,"c":{"x":[{"y":4}]}}"#;
        assert_eq!(normalized(text), text);
        let text = r#"[1,2,{3:4},5]"#;
        assert_eq!(normalized(text), r#"[1,2,{"3":4},5]"#);
    }

    #[test]
    fn digits_and_braces_inside_strings_are_untouched() {
        let text = r#"{"s":"{0:\"x\",1:2}","t":"a\\","u":{7:"{8:9}"}}"#;
        assert_eq!(
            normalized(text),
            r#"{"s":"{0:\"x\",1:2}","t":"a\\","u":{"7":"{8:9}"}}"#
        );
    }

    #[test]
    fn blanks_around_keys_are_kept() {
        assert_eq!(
            normalized("{ 0 : \"a\" ,\n 1:\"b\"}"),
            "{ \"0\" : \"a\" ,\n \"1\":\"b\"}"
        );
    }

    #[test]
    fn nested_maps_under_unquoted_keys() {
        assert_eq!(
            normalized(r#"{"t":{0:{1:"x"}},"u":[{2:[3]}]}"#),
            r#"{"t":{"0":{"1":"x"}},"u":[{"2":[3]}]}"#
        );
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for text in ["{0", "{\"a", "{-", "{0:", "[{", "{\"a\\", "}}]]", ""] {
            let _ = quote_numeric_keys(text.as_bytes());
        }
    }
}
