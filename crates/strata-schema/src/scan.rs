//! A fast scanner for event lines of the usual shape: one JSON object whose
//! values are strings, non-negative numbers, booleans, nulls, or one level
//! of nested object of those (`attrs`). Strings are borrowed from the line
//! unless they hold escapes, which are decoded.
//!
//! It accepts only JSON that serde_json accepts and reads it to the same
//! values; on anything else (an escape serde_json refuses, such as a lone
//! surrogate, an array, a negative or long number, a syntax error) it gives
//! up and the line goes through serde_json, which words the error.
//! Contract violations come from the shared [`Fields`](crate::event::Fields),
//! so their reasons are the same either way.

use std::borrow::Cow;

use crate::event::{Event, Fields, Json};

/// Parses `line` if it has the usual shape; `None` hands it to serde_json.
pub(crate) fn parse_plain(line: &[u8]) -> Option<Result<Event<'_>, String>> {
    // One UTF-8 check for the whole line; serde_json checks each string.
    let text = std::str::from_utf8(line).ok()?;
    let mut scanner = Scanner { text, pos: 0 };
    let mut fields = Fields::new();
    scanner.skip_space();
    scanner.expect(b'{')?;
    scanner.skip_space();
    if !scanner.eat(b'}') {
        loop {
            let (key, value) = scanner.member(true)?;
            if let Err(reason) = fields.set(key, value) {
                return Some(Err(reason));
            }
            if !scanner.after_member()? {
                break;
            }
        }
    }
    scanner.skip_space();
    if scanner.pos != text.len() {
        return None;
    }
    Some(fields.finish())
}

/// Largest number of digits read exactly: below 2^53, so that a decimal
/// fraction is one correctly rounded division, as in serde_json.
const EXACT_DIGITS: usize = 15;

/// Powers of ten that are exact in an f64.
const POW10: [f64; EXACT_DIGITS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// `"key" : value`, the value nested one level at most when `top`.
    fn member(&mut self, top: bool) -> Option<(Cow<'a, str>, Json<'a>)> {
        let key = self.string()?;
        self.skip_space();
        self.expect(b':')?;
        self.skip_space();
        let value = match self.peek()? {
            b'"' => Json::Str(self.string()?),
            b'{' if top => self.flat_object()?,
            b'0'..=b'9' => self.number()?,
            b't' => self.literal("true", Json::Bool(true))?,
            b'f' => self.literal("false", Json::Bool(false))?,
            b'n' => self.literal("null", Json::Null)?,
            _ => return None,
        };
        Some((key, value))
    }

    /// After a member: `true` at a `,` (another member follows), `false` at `}`.
    fn after_member(&mut self) -> Option<bool> {
        self.skip_space();
        match self.peek()? {
            b',' => {
                self.pos += 1;
                self.skip_space();
                Some(true)
            }
            b'}' => {
                self.pos += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// An object whose values are all scalars.
    fn flat_object(&mut self) -> Option<Json<'a>> {
        self.expect(b'{')?;
        self.skip_space();
        // Room for the usual handful of attributes: growing from four to
        // eight to sixteen reallocated most objects once or twice.
        let mut entries = Vec::with_capacity(16);
        if !self.eat(b'}') {
            loop {
                let (key, value) = self.member(false)?;
                entries.push((key, value));
                if !self.after_member()? {
                    break;
                }
            }
        }
        Some(Json::Object(entries))
    }

    /// A string, quotes excluded: borrowed from the line unless it holds
    /// escapes (6% of the benchmark's `wide` and `long` lines have one),
    /// which are decoded as serde_json decodes them. A control character
    /// gives up.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.pos;
        let rest = &self.text.as_bytes()[start..];
        let end = string_stop(rest)?;
        self.pos += end;
        if rest[end] == b'"' {
            self.pos += 1;
            // Both ends are ASCII quotes, so these are char boundaries.
            return Some(Cow::Borrowed(&self.text[start..start + end]));
        }
        self.escaped(start).map(Cow::Owned)
    }

    /// The string that started at `start` and is stopped by a `\` or a
    /// control character at `self.pos`, decoded up to its closing quote.
    /// Out of line: most strings have no escape, and inlined it made
    /// every string slower.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, start: usize) -> Option<String> {
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.text[start..self.pos]);
        loop {
            match self.text.as_bytes()[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                _ => return None, // a control character: serde_json words it
            }
            let from = self.pos;
            let end = string_stop(&self.text.as_bytes()[from..])?;
            out.push_str(&self.text[from..from + end]);
            self.pos = from + end;
        }
    }

    /// The character of the escape after a `\`; `None` for any escape
    /// serde_json refuses (unknown letters, bad hex, lone surrogates).
    fn escape(&mut self) -> Option<char> {
        let letter = self.peek()?;
        self.pos += 1;
        Some(match letter {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => match self.hex4()? {
                high @ 0xD800..=0xDBFF => {
                    if !self.text[self.pos..].starts_with("\\u") {
                        return None;
                    }
                    self.pos += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                }
                code => char::from_u32(code)?, // `None` for a lone low surrogate
            },
            _ => return None,
        })
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Option<Json<'a>> {
        let found = self.text[self.pos..].starts_with(word);
        self.pos += word.len() * usize::from(found);
        found.then_some(value)
    }

    /// A non-negative integer or decimal fraction of at most `EXACT_DIGITS`
    /// digits, without exponent.
    fn number(&mut self) -> Option<Json<'a>> {
        let (whole, whole_digits) = self.digits()?;
        if whole_digits > 1 && self.text.as_bytes()[self.pos - whole_digits] == b'0' {
            return None; // a leading zero: invalid JSON
        }
        match self.peek() {
            Some(b'.') => {
                self.pos += 1;
                let (fraction, fraction_digits) = self.digits()?;
                if whole_digits + fraction_digits > EXACT_DIGITS {
                    return None;
                }
                let scale = 10u64.pow(fraction_digits as u32);
                let significand = whole * scale + fraction;
                Some(Json::Float(significand as f64 / POW10[fraction_digits]))
            }
            Some(b'e' | b'E') => None,
            _ => Some(Json::UInt(whole)),
        }
    }

    /// A run of at least one digit, at most 19 (so it fits a u64): its value
    /// and length.
    fn digits(&mut self) -> Option<(u64, usize)> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            value = value * 10 + u64::from(digit - b'0');
            self.pos += 1;
            if self.pos - start > 19 {
                return None;
            }
        }
        let len = self.pos - start;
        (len > 0).then_some((value, len))
    }
}

/// Where the first byte that ends a plain string (`"`) or stops the fast
/// path (`\\` or a control character) is in `bytes`: one pass, sixteen bytes
/// at a time with SSE2 (part of every x86-64 CPU), then eight at a time
/// (messages and ids are tens of bytes; a SIMD search per byte class would
/// take three passes). SSE2 took 4.6% of the instructions off parsing the
/// benchmark's blocks (eight bytes at a time had taken it from 5% to 4% of an ingest).
fn string_stop(bytes: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: every x86-64 CPU has SSE2.
    return unsafe { string_stop_sse2(bytes) };
    #[cfg(not(target_arch = "x86_64"))]
    string_stop_by_words(bytes)
}

/// [`string_stop`] sixteen bytes at a time, then eight.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn string_stop_sse2(bytes: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut chunks = bytes.chunks_exact(16);
    for (n, chunk) in (&mut chunks).enumerate() {
        // SAFETY: `chunk` is 16 readable bytes, and an unaligned load has
        // no other requirement.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // A byte below 0x20 is its own minimum with 0x1f.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let found = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control));
        if found != 0 {
            return Some(n * 16 + found.trailing_zeros() as usize);
        }
    }
    let tail = bytes.len() - chunks.remainder().len();
    string_stop_by_words(chunks.remainder()).map(|at| tail + at)
}

/// [`string_stop`] eight bytes at a time, in plain integer arithmetic.
fn string_stop_by_words(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let mut words = bytes.chunks_exact(8);
    for (n, word) in (&mut words).enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        // The high bit of each byte below 0x01 (of `quote`, `backslash`) or
        // below 0x20 (of `word`). A borrow can also mark bytes after a
        // marked one, never before: the lowest mark is a true find.
        let marks = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let marks = marks & HIGHS;
        if marks != 0 {
            return Some(n * 8 + marks.trailing_zeros() as usize / 8);
        }
    }
    let tail = bytes.len() - words.remainder().len();
    (words.remainder().iter())
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|at| tail + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event serde_json alone makes of a line.
    fn slow(line: &str) -> Result<Event<'_>, String> {
        use serde::Deserializer;
        let mut de = serde_json::Deserializer::from_str(line);
        let event = de
            .deserialize_map(crate::event::LineVisitor)
            .map_err(crate::event::describe)?;
        de.end().map_err(crate::event::describe)?;
        Ok(event)
    }

    proptest::proptest! {
        #[test]
        fn string_stop_finds_the_first_quote_backslash_or_control_byte(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => 0x20u8..0x7f,
                    1 => 0x80u8..=0xff,
                    1 => proptest::sample::select(vec![b'"', b'\\', 0x00, 0x1f, b'!', b'[', b'^']),
                ],
                0..80,
            )
        ) {
            let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            proptest::prop_assert_eq!(string_stop(&bytes), expected);
            proptest::prop_assert_eq!(string_stop_by_words(&bytes), expected);
        }
    }

    #[test]
    fn plain_lines_take_the_fast_path_and_match_serde() {
        let lines = [
            r#"{"ts":"2025-01-01T00:04:13.712Z","tenant":"acme-health","family":"data_usage","action":"query","outcome":"success","user":"qa0041@acme-health","src_ip":"172.16.81.57","bytes":621730,"records":787,"duration_ms":213.026,"event_id":"evt-1","attrs":{"channel":"sms","n":7,"ok":true,"x":null}}"#,
            r#" { "ts" : 1741075200000 , "family" : "access" , "tenant" : "t" , "action" : "login" , "shift" : "night" , "depth" : 0.5 , "flag" : false } "#,
            r#"{"ts":"2025-03-04T10:00:00+02:00","tenant":"t","family":"technical","action":"error","duration_ms":0,"message":"héllo wörld"}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"login","attrs":{}}"#,
        ];
        for line in lines {
            let fast = parse_plain(line.as_bytes()).unwrap_or_else(|| panic!("fast path: {line}"));
            assert_eq!(fast, slow(line), "{line}");
            assert!(fast.is_ok(), "{line}");
        }
    }

    #[test]
    fn escaped_strings_take_the_fast_path_and_match_serde() {
        let lines = [
            r#"{"ts":0,"tenant":"t","family":"access","action":"say \"hi\""}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","message":"C:\\temp\\a.txt\n\tline 2 \/ \b\f\r end"}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","message":"caf\u00e9 \u20ac \ud83d\ude00 \u0000 !"}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","us\u0065r":"u1","attrs":{"k\"ey":"v\\al","n":1}}"#,
            r#"{"ts":0,"t\u0065nant":"t","family":"access","action":"x","extra":"\"quoted\" and plain"}"#,
        ];
        for line in lines {
            let fast = parse_plain(line.as_bytes()).unwrap_or_else(|| panic!("fast path: {line}"));
            assert_eq!(fast, slow(line), "{line}");
            assert!(fast.is_ok(), "{line}");
        }
        // Escapes serde_json refuses are left to it, which words the error.
        for bad in [
            r#"\x"#,
            r#"\u12"#,
            r#"\u12g4"#,
            r#"\ud800"#,
            r#"\ud800\u0041"#,
            r#"\udc00"#,
        ] {
            let line = format!(r#"{{"ts":0,"tenant":"t","family":"access","action":"a{bad}b"}}"#);
            assert!(parse_plain(line.as_bytes()).is_none(), "{line}");
            assert!(slow(&line).is_err(), "{line}");
        }
    }

    #[test]
    fn generated_events_all_take_the_fast_path() {
        let config = strata_gen::GenConfig {
            events: 5_000,
            ..Default::default()
        };
        let mut out = Vec::new();
        strata_gen::generate(&config, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            let fast = parse_plain(line.as_bytes()).unwrap_or_else(|| panic!("fast path: {line}"));
            assert_eq!(fast, slow(line), "{line}");
        }
    }

    #[test]
    fn contract_violations_give_the_same_reason_on_both_paths() {
        let lines = [
            r#"{"ts":"2025-02-30T00:00:00Z","tenant":"t","family":"access","action":"x"}"#,
            r#"{"ts":0,"tenant":"Acme","family":"access","action":"x"}"#,
            r#"{"ts":0,"tenant":"t","family":"billing","action":"x"}"#,
            r#"{"ts":0,"tenant":"t","family":"access"}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","records":"7"}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","src_ip":"10.0.0.256"}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","user":42}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","attrs":7}"#,
        ];
        for line in lines {
            let fast = parse_plain(line.as_bytes()).unwrap_or_else(|| panic!("fast path: {line}"));
            assert!(fast.is_err(), "{line}");
            assert_eq!(fast, slow(line), "{line}");
        }
    }

    #[test]
    fn unusual_or_malformed_lines_are_left_to_serde() {
        let lines = [
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","tags":["a"]}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","attrs":{"deep":{"a":1}}}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","bytes":-5}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","bytes":012}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","duration_ms":1e3}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","duration_ms":1.}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","bytes":123456789012345678901}"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x","duration_ms":0.1234567890123456}"#,
            "{\"ts\":0,\"tenant\":\"t\",\"family\":\"access\",\"action\":\"a\tb\"}",
            r#"{"ts":0,"tenant":"t","family":"access","action":"x"} trailing"#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x""#,
            r#"{"ts":0,"tenant":"t","family":"access","action":"x",}"#,
            r#"{"ts":0 "tenant":"t"}"#,
            r#"[1,2]"#,
            r#"{"ts":tru}"#,
        ];
        for line in lines {
            assert!(parse_plain(line.as_bytes()).is_none(), "{line}");
        }
        assert!(parse_plain(b"{\"ts\":0,\"action\":\"\xff\"}").is_none());
    }

    proptest::proptest! {
        /// Numbers the scanner reads are the numbers serde_json reads.
        #[test]
        fn numbers_match_serde(whole in 0u64..10_000_000, fraction in 0u64..100_000_000, digits in 0usize..9) {
            let text = match digits {
                0 => whole.to_string(),
                n => format!("{whole}.{:0n$}", fraction % 10u64.pow(n as u32)),
            };
            let mut scanner = Scanner { text: &text, pos: 0 };
            let ours = scanner.number();
            let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
            match ours {
                Some(Json::UInt(n)) => proptest::prop_assert_eq!(Some(n), theirs.as_u64()),
                Some(Json::Float(f)) => proptest::prop_assert_eq!(Some(f), theirs.as_f64()),
                other => proptest::prop_assert!(
                    other.is_none() && text.bytes().filter(u8::is_ascii_digit).count() > EXACT_DIGITS,
                    "{text}"
                ),
            }
        }

        /// On any line, the fast path either gives up or agrees with serde_json.
        #[test]
        fn fast_path_agrees_with_serde(
            key in "(ts|tenant|family|action|bytes|duration_ms|attrs|src_ip|outcome|extra)",
            value in r#"("[a-z0-9 .:_-]{0,12}"|"([a-z ]|\\["\\/bfnrt]|\\u00[0-9a-f]{2}|\\ud83d\\ude00|\\ud800|\\u[0-9A-Fa-f]{4}){0,8}"|[0-9]{1,6}(\.[0-9]{1,4})?|true|null|\{"k":[0-9"a-z]{1,3}\}|"2025-0[1-9]-[0-3][0-9]T[0-2][0-9]:00:00Z"|"10\.0\.[0-9]{1,3}\.1")"#,
        ) {
            let line = format!(r#"{{"ts":1000,"tenant":"t","family":"access","action":"a","{key}":{value}}}"#);
            if let Some(fast) = parse_plain(line.as_bytes()) {
                proptest::prop_assert_eq!(fast, slow(&line));
            }
        }
    }
}
