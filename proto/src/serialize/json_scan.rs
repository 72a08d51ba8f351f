//! A direct scanner for the JSON headers real clients send, tried before the general decoder.
//!
//! Java, C++ and Go clients all write the same shape: one object whose `code`, `flag`, `opaque`
//! and `version` are integers, whose `language`, `remark` and `serializeTypeCurrentRPC` are
//! strings, and whose `extFields` is an object of strings (or null). That shape is scanned here
//! in one pass, straight into the ext fields' text buffer; header decoding led the broker's
//! user-space profile of sends, and the general decoder spends most of its time in visitor
//! plumbing this shape does not need.
//!
//! The scanner accepts a strict subset of what [`super::json::decode`] accepts and decodes it
//! to the same result (a property test holds it to that). Anything else (numbers as strings or
//! doubles, non-string ext values, nested values under unknown keys, surrogate escapes, syntax
//! errors) returns `None`, and the general decoder decides, with its error messages.

use crate::command::{ExtFields, LanguageCode};

use super::DecodedHeader;

/// Digits an integer field may have here: 10 covers every `i32`; longer input is left to the
/// general decoder, which reports the overflow.
const INT_DIGITS_MAX: usize = 10;

/// Decodes `header` if it has the common shape, else `None`.
pub(crate) fn decode(header: &[u8]) -> Option<DecodedHeader> {
    // One validation of the whole text lets every string below be sliced without its own check
    // (slices start and end at ASCII delimiters, so they stay on character boundaries).
    let text = std::str::from_utf8(header).ok()?;
    let mut scan = Scanner { text, pos: 0 };
    let mut header = DecodedHeader::java_defaults();
    scan.skip_whitespace();
    scan.expect(b'{')?;
    if !scan.close(b'}') {
        loop {
            scan.member(&mut header)?;
            if scan.close(b'}') {
                break;
            }
            scan.expect(b',')?;
        }
    }
    scan.skip_whitespace();
    (scan.pos == text.len()).then_some(header)
}

/// A position in the header text.
struct Scanner<'t> {
    text: &'t str,
    pos: usize,
}

impl<'t> Scanner<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then consumes `byte` or fails.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Skips whitespace; consumes `byte` if it is next.
    fn close(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes the literal `null` if it is next (after whitespace).
    fn null(&mut self) -> bool {
        self.skip_whitespace();
        let found = self.text.as_bytes()[self.pos..].starts_with(b"null");
        if found {
            self.pos += 4;
        }
        found
    }

    /// One `"key": value` of the top-level object.
    fn member(&mut self, header: &mut DecodedHeader) -> Option<()> {
        self.skip_whitespace();
        let key = self.unescaped_string()?;
        self.expect(b':')?;
        match key {
            "code" => header.code = self.int()?,
            "flag" => header.flag = self.int()?,
            "opaque" => header.opaque = self.int()?,
            "version" => header.version = self.int()?,
            "language" => header.language = self.language()?,
            "remark" => header.remark = self.remark()?,
            "extFields" => header.ext_fields = self.ext_fields()?,
            _ => self.skip_scalar()?,
        }
        Some(())
    }

    /// A string without escapes, borrowed from the header (top-level keys, language names).
    fn unescaped_string(&mut self) -> Option<&'t str> {
        self.expect(b'"')?;
        let text = self.text;
        let start = self.pos;
        let end = start + text.as_bytes()[start..].iter().position(|&b| b == b'"')?;
        let s = &text[start..end];
        if s.bytes().any(|b| b == b'\\' || b < 0x20) {
            return None;
        }
        self.pos = end + 1;
        Some(s)
    }

    /// A JSON integer in `i32` range: `-`, then `0` or digits not starting with `0`, with no
    /// fraction or exponent.
    fn int(&mut self) -> Option<i32> {
        self.skip_whitespace();
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.text.as_bytes()[start..self.pos];
        let well_formed = !digits.is_empty()
            && digits.len() <= INT_DIGITS_MAX
            && (digits[0] != b'0' || digits.len() == 1)
            && !matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        if !well_formed {
            return None;
        }
        let magnitude = digits
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        i32::try_from(if negative { -magnitude } else { magnitude }).ok()
    }

    /// `language`: a name (unknown names are OTHER) or null (JAVA).
    fn language(&mut self) -> Option<LanguageCode> {
        if self.null() {
            return Some(LanguageCode::Java);
        }
        Some(LanguageCode::from_name(self.unescaped_string()?))
    }

    /// `remark`: a string (empty means none) or null.
    fn remark(&mut self) -> Option<Option<String>> {
        if self.null() {
            return Some(None);
        }
        let mut remark = String::new();
        self.string_into(&mut remark)?;
        Some((!remark.is_empty()).then_some(remark))
    }

    /// `extFields`: an object of strings (a null value drops its key, as the general decoder
    /// does), or null. The text goes straight into the map's buffer, sized once from the
    /// header's length (unescaping only shortens text).
    fn ext_fields(&mut self) -> Option<ExtFields> {
        let mut fields = ExtFields::new();
        if self.null() {
            return Some(fields);
        }
        self.expect(b'{')?;
        if self.close(b'}') {
            return Some(fields);
        }
        let text_bytes = self.text.len();
        loop {
            let key_start = fields.text_len();
            self.string_into(fields.text_mut(text_bytes))?;
            let key = fields.span_since(key_start);
            self.expect(b':')?;
            if self.null() {
                fields.truncate_text(key_start);
            } else {
                let value_start = fields.text_len();
                self.string_into(fields.text_mut(0))?;
                let value = fields.span_since(value_start);
                fields.push_decoded(key, value);
            }
            if self.close(b'}') {
                break;
            }
            self.expect(b',')?;
        }
        fields.keep_last_of_duplicates();
        Some(fields)
    }

    /// Appends a JSON string's decoded text to `dst`. Runs without escapes are copied whole.
    fn string_into(&mut self, dst: &mut String) -> Option<()> {
        self.string(Some(dst))
    }

    /// Reads a JSON string, appending its decoded text to `dst` if given (an unused value is
    /// checked but not copied).
    fn string(&mut self, mut dst: Option<&mut String>) -> Option<()> {
        self.expect(b'"')?;
        let bytes = self.text.as_bytes();
        loop {
            let start = self.pos;
            let run = bytes[start..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            self.pos = start + run;
            if let Some(dst) = dst.as_deref_mut() {
                dst.push_str(&self.text[start..self.pos]);
            }
            match bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.escape()?;
                    if let Some(dst) = dst.as_deref_mut() {
                        dst.push(c);
                    }
                }
                _ => return None, // a raw control character: JSON forbids it
            }
        }
    }

    /// The character of the escape after a backslash. Surrogate escapes (`\ud83d\ude00`) are
    /// left to the general decoder: no client writes them in headers.
    fn escape(&mut self) -> Option<char> {
        let c = match self.peek()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self.text.get(self.pos + 1..self.pos + 5)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                self.pos += 4;
                c
            }
            _ => return None,
        };
        self.pos += 1;
        Some(c)
    }

    /// The value of a key the header does not use: a string, an integer, `true`, `false` or
    /// null. Objects, arrays and other numbers go to the general decoder.
    fn skip_scalar(&mut self) -> Option<()> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string(None),
            b'-' | b'0'..=b'9' => self.int().map(drop),
            _ => {
                let rest = &self.text.as_bytes()[self.pos..];
                let len = [&b"true"[..], b"false", b"null"]
                    .into_iter()
                    .find(|lit| rest.starts_with(lit))?
                    .len();
                self.pos += len;
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;
    use crate::command::RemotingCommand;
    use crate::serialize::json;

    /// Everything a decoded header holds, ext fields in decoded order, as text.
    fn parts(h: &DecodedHeader) -> String {
        let ext: Vec<_> = h.ext_fields.iter().collect();
        format!(
            "code {} language {:?} version {} opaque {} flag {} remark {:?} ext {:?}",
            h.code, h.language, h.version, h.opaque, h.flag, h.remark, ext
        )
    }

    /// JSON string literals the scanner decodes: plain, every short escape, `\u` escapes (the
    /// separators of message properties among them), non-ASCII text.
    fn good_string() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-zA-Z0-9_]{0,8}".prop_map(|s| format!("\"{s}\"")),
            1 => Just(r#""UNIQ_KEY\u0001AB\u0002TAGS\u0001x\u0002""#.to_string()),
            1 => Just(r#""a\"b\\c\/d\b\f\n\r\t""#.to_string()),
            1 => Just("\"héllo ✓\"".to_string()),
            1 => Just(r#""\u00e9\u0000\u00E9""#.to_string()),
        ]
    }

    /// JSON string literals the scanner leaves to the general decoder.
    fn odd_string() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#""\ud83d\ude00""#),
            Just(r#""\ud83d""#),
            Just("\"raw\u{1}control\""),
            Just(r#""bad\x""#),
            Just(r#""\u12""#),
            Just(r#""unterminated"#),
        ]
        .prop_map(str::to_string)
    }

    fn good_value() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => good_string(),
            2 => any::<i32>().prop_map(|n| n.to_string()),
            1 => prop_oneof![Just("null"), Just("true"), Just("false"), Just("-0"), Just("0")]
                .prop_map(str::to_string),
        ]
    }

    fn odd_value() -> impl Strategy<Value = String> {
        prop_oneof![
            odd_string(),
            any::<i64>().prop_map(|n| n.to_string()),
            prop_oneof![
                Just("01"),
                Just("1.5"),
                Just("2.0"),
                Just("1e3"),
                Just("-"),
                Just("\"12\""),
                Just("[1,2]"),
                Just("{\"x\":1}"),
                Just("nul"),
                Just("nullx"),
                Just("7"),
            ]
            .prop_map(str::to_string),
        ]
    }

    /// `extFields`: null or an object; with `odd`, also a number, and odd keys and values.
    fn ext_fields(odd: bool) -> BoxedStrategy<String> {
        let (key, value) = if odd {
            (
                prop_oneof![4 => good_string(), 1 => odd_string()].boxed(),
                prop_oneof![4 => good_value(), 1 => odd_value()].boxed(),
            )
        } else {
            let value = prop_oneof![4 => good_string(), 1 => Just("null".to_string())];
            (good_string().boxed(), value.boxed())
        };
        let object =
            prop::collection::vec((key, value).prop_map(|(k, v)| format!("{k}:{v}")), 0..6)
                .prop_map(|m| format!("{{{}}}", m.join(",")));
        let number = if odd { "7" } else { "null" };
        prop_oneof![1 => Just("null".to_string()), 1 => Just(number.to_string()), 6 => object]
            .boxed()
    }

    /// One top-level member; with `odd`, its value may be one the scanner does not take.
    fn member(odd: bool) -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("code"),
            Just("flag"),
            Just("opaque"),
            Just("version"),
            Just("language"),
            Just("remark"),
            Just("extFields"),
            Just("serializeTypeCurrentRPC"),
            Just("other"),
        ];
        key.prop_flat_map(move |key| {
            let int = any::<i32>().prop_map(|n| n.to_string());
            let plain_name = "[A-Z]{0,6}".prop_map(|s| format!("\"{s}\""));
            let value = match key {
                "extFields" => ext_fields(odd),
                "code" | "flag" | "opaque" | "version" => int.boxed(),
                "language" => prop_oneof![4 => plain_name, 1 => Just("null".to_string())].boxed(),
                "remark" => prop_oneof![4 => good_string(), 1 => Just("null".to_string())].boxed(),
                _ => good_value().boxed(),
            };
            let value = if odd {
                prop_oneof![6 => value, 1 => odd_value()].boxed()
            } else {
                value
            };
            value.prop_map(move |v| format!("\"{key}\":{v}"))
        })
    }

    /// A header object with whitespace between tokens; with `odd`, odd members and trailing
    /// garbage too.
    fn header(odd: bool) -> impl Strategy<Value = String> {
        let gap = prop_oneof![Just(""), Just(" "), Just("\n"), Just(" \t\r\n")];
        let tail = if odd {
            prop_oneof![4 => Just(""), 1 => Just("x"), 1 => Just("}"), 1 => Just(",")].boxed()
        } else {
            Just("").boxed()
        };
        (
            prop::collection::vec(member(odd), 0..9),
            gap.clone(),
            gap,
            tail,
        )
            .prop_map(|(members, a, b, tail)| {
                let sep = format!("{a},{a}");
                format!("{a}{{{a}{}{a}}}{b}{tail}", members.join(&sep))
            })
    }

    proptest! {
        /// Headers of the common shape (every escape, whitespace, null ext values, duplicate
        /// keys, unknown scalar members) are scanned, and decoded as the general decoder does.
        #[test]
        fn common_headers_are_scanned_as_the_general_decoder_decodes_them(text in header(false)) {
            let scanned = decode(text.as_bytes());
            prop_assert!(scanned.is_some(), "not scanned: {}", text);
            let scanned = scanned.unwrap();
            let general = json::decode_general(text.as_bytes());
            let general = general.unwrap_or_else(|e| panic!("general rejects {text}: {e}"));
            prop_assert_eq!(parts(&scanned), parts(&general), "{}", text);
        }

        /// Whatever the scanner accepts of any input, the general decoder decodes the same way.
        #[test]
        fn the_scan_agrees_with_the_general_decoder(text in header(true)) {
            if let Some(scanned) = decode(text.as_bytes()) {
                let general = json::decode_general(text.as_bytes());
                let general = general.unwrap_or_else(|e| panic!("general rejects {text}: {e}"));
                prop_assert_eq!(parts(&scanned), parts(&general), "{}", text);
            }
        }

        /// The headers this crate encodes (the shape Java clients send) take the scanner's path.
        #[test]
        fn encoded_headers_are_scanned(
            code in any::<i32>(),
            opaque in any::<i32>(),
            remark in prop::option::of("\\PC{0,12}"),
            ext in prop::collection::vec(("[a-zA-Z]{1,6}", "\\PC{0,12}"), 0..8),
        ) {
            let mut command =
                RemotingCommand::new_request(code, ext.into_iter().collect(), Default::default());
            command.opaque = opaque;
            command.remark = remark;
            let mut text = BytesMut::new();
            json::encode(&command, &mut text);
            let scanned = decode(&text);
            prop_assert!(scanned.is_some(), "not scanned: {:?}", text);
            let (scanned, general) = (scanned.unwrap(), json::decode_general(&text).unwrap());
            prop_assert_eq!(parts(&scanned), parts(&general));
        }
    }

    #[test]
    fn a_java_send_header_with_property_separators_is_scanned() {
        let text = r#"{"code":310,"extFields":{"a":"G","b":"T","i":"UNIQ_KEY\u0001AB\u0002WAIT\u0001true\u0002"},"flag":0,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":475}"#;
        let h = decode(text.as_bytes()).expect("scanned");
        assert_eq!((h.code, h.opaque, h.version), (310, 7, 475));
        assert_eq!(h.language, LanguageCode::Java);
        assert_eq!(
            h.ext_fields.get("i"),
            Some("UNIQ_KEY\u{1}AB\u{2}WAIT\u{1}true\u{2}")
        );
    }

    #[test]
    fn shapes_outside_the_common_one_are_left_to_the_general_decoder() {
        for text in [
            r#"{"code":"310"}"#,
            r#"{"code":310.0}"#,
            r#"{"extFields":{"a":1}}"#,
            r#"{"x":[1]}"#,
            r#"{"remark":"\ud83d\ude00"}"#,
            r#"{"code":01}"#,
            r#"{"code":1} x"#,
        ] {
            assert!(decode(text.as_bytes()).is_none(), "{text}");
        }
    }
}
