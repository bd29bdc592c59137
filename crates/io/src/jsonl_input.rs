//! JSON Lines input: one document per line, taken from a named string field
//! (`--jsonl-field text`), as in common pre-training corpora.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::IoError;

/// Iterates over the documents of a JSON Lines buffer: for every non-blank line, which must be a
/// JSON object, the UTF-8 bytes of its string field `field`.
///
/// Lines end with `\n` or `\r\n`; the last one may lack its newline; lines holding only
/// whitespace are skipped (but still counted for line numbers); a UTF-8 byte-order mark before
/// the first line is ignored. Only the requested field is copied out: the others are parsed for
/// validity and dropped, so memory stays bounded by the largest document.
///
/// Created by [`jsonl_documents`]. Each item is the next document, or the error for its line
/// (iteration can continue after an error).
#[derive(Debug, Clone)]
pub struct JsonlDocuments<'a> {
    bytes: &'a [u8],
    field: &'a str,
    pos: usize,
    line: usize,
}

/// The documents of a JSON Lines buffer; see [`JsonlDocuments`].
///
/// ```
/// let corpus = b"{\"text\": \"hello\", \"id\": 1}\n\n{\"id\": 2, \"text\": \"w\\u00f6rld\"}";
/// let docs: Vec<Vec<u8>> = bltpatch_io::jsonl_documents(corpus, "text")
///     .collect::<Result<_, _>>()
///     .unwrap();
/// assert_eq!(docs, [b"hello".to_vec(), "wörld".as_bytes().to_vec()]);
///
/// let err = bltpatch_io::jsonl_documents(b"{}\n[1]\n", "text").next().unwrap().unwrap_err();
/// assert_eq!(err.to_string(), "line 1 has no field \"text\"");
/// ```
///
/// # Errors
///
/// Each item fails, naming its 1-based line number, with [`IoError::InvalidJson`],
/// [`IoError::NotAnObject`], [`IoError::MissingField`] or [`IoError::FieldNotString`].
pub fn jsonl_documents<'a>(bytes: &'a [u8], field: &'a str) -> JsonlDocuments<'a> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    JsonlDocuments {
        bytes,
        field,
        pos: 0,
        line: 0,
    }
}

impl<'a> JsonlDocuments<'a> {
    /// The 1-based number of the line that the last item came from (0 before the first).
    pub fn line(&self) -> usize {
        self.line
    }
}

impl Iterator for JsonlDocuments<'_> {
    type Item = Result<Vec<u8>, IoError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.bytes.len() {
            let rest = &self.bytes[self.pos..];
            let (line, advance) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], end + 1),
                None => (rest, rest.len()),
            };
            self.pos += advance;
            self.line += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(parse_line(line, self.field, self.line));
        }
        None
    }
}

/// Parses one line and extracts its string field `field`.
fn parse_line(line: &[u8], field: &str, number: usize) -> Result<Vec<u8>, IoError> {
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let found = LineSeed { field }
        .deserialize(&mut deserializer)
        .and_then(|found| deserializer.end().map(|()| found))
        .map_err(|err| invalid_json(&err, number))?;
    match found {
        Found::Text(text) => Ok(text.into_bytes()),
        Found::NotObject => Err(IoError::NotAnObject { line: number }),
        Found::Missing => Err(IoError::MissingField {
            line: number,
            field: field.to_owned(),
        }),
        Found::NotString => Err(IoError::FieldNotString {
            line: number,
            field: field.to_owned(),
        }),
    }
}

/// [`IoError::InvalidJson`] from a parser error, without serde_json's "at line 1 column C" suffix
/// (the parser only ever sees one line; the column becomes a field).
fn invalid_json(err: &serde_json::Error, line: usize) -> IoError {
    let mut message = err.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    IoError::InvalidJson {
        line,
        column: err.column(),
        message,
    }
}

/// What a line held.
enum Found {
    /// Valid JSON, but not an object.
    NotObject,
    /// An object without the field.
    Missing,
    /// An object whose field is not a string.
    NotString,
    /// The field's text.
    Text(String),
}

/// Parses a whole line, keeping only the requested field.
struct LineSeed<'f> {
    field: &'f str,
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Found, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut found = Found::Missing;
        while let Some(is_field) = map.next_key_seed(KeyIs(self.field))? {
            if is_field {
                found = map.next_value_seed(StringValue)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Found, A::Error> {
        drain(seq).map(|()| Found::NotObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Found, E> {
        Ok(Found::NotObject)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Found, E> {
        Ok(Found::NotObject)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Found, E> {
        Ok(Found::NotObject)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Found, E> {
        Ok(Found::NotObject)
    }

    fn visit_str<E>(self, _: &str) -> Result<Found, E> {
        Ok(Found::NotObject)
    }

    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(Found::NotObject)
    }
}

/// Compares a key with the requested field name without allocating.
struct KeyIs<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The requested field's value: its text if it is a string.
struct StringValue;

impl<'de> DeserializeSeed<'de> for StringValue {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Found, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringValue {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, text: &str) -> Result<Found, E> {
        Ok(Found::Text(text.to_owned()))
    }

    fn visit_string<E>(self, text: String) -> Result<Found, E> {
        Ok(Found::Text(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Found::NotString)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Found, A::Error> {
        drain(seq).map(|()| Found::NotString)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Found, E> {
        Ok(Found::NotString)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Found, E> {
        Ok(Found::NotString)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Found, E> {
        Ok(Found::NotString)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Found, E> {
        Ok(Found::NotString)
    }

    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(Found::NotString)
    }
}

/// Parses and drops the rest of a JSON array.
fn drain<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(input: &[u8]) -> Vec<Result<Vec<u8>, String>> {
        jsonl_documents(input, "text")
            .map(|item| item.map_err(|err| err.to_string()))
            .collect()
    }

    #[test]
    fn extracts_field_skips_blank_lines_accepts_crlf_and_no_final_newline() {
        let input = b"{\"id\":1,\"text\":\"a\\nb\"}\r\n   \r\n\n{\"text\":\"\\u00e9\",\"meta\":{\"x\":[1,2]}}\r\n\t\n{\"text\":\"\"}";
        assert_eq!(
            docs(input),
            [
                Ok(b"a\nb".to_vec()),
                Ok("é".as_bytes().to_vec()),
                Ok(Vec::new())
            ]
        );
    }

    #[test]
    fn byte_order_mark_and_duplicate_keys() {
        let input = b"\xEF\xBB\xBF{\"text\":\"first\",\"text\":\"last\"}\n";
        assert_eq!(docs(input), [Ok(b"last".to_vec())]);
    }

    #[test]
    fn errors_name_the_line() {
        let input = b"{\"text\":\"ok\"}\n\n{\"text\": nope}\n[1,2]\n\"text\"\n{\"body\":\"x\"}\n{\"text\":3}\n{\"text\":\"a\"} x\n{\"text\":{\"a\":1}}";
        assert_eq!(
            docs(input),
            [
                Ok(b"ok".to_vec()),
                Err("invalid JSON on line 3, column 11: expected ident".to_owned()),
                Err("line 4 is not a JSON object".to_owned()),
                Err("line 5 is not a JSON object".to_owned()),
                Err("line 6 has no field \"text\"".to_owned()),
                Err("field \"text\" on line 7 is not a string".to_owned()),
                Err("invalid JSON on line 8, column 14: trailing characters".to_owned()),
                Err("field \"text\" on line 9 is not a string".to_owned()),
            ]
        );
    }

    #[test]
    fn truncated_and_invalid_utf8_lines_are_invalid_json() {
        let items = docs(b"{\"text\": \"abc\n{\"text\": \"\xff\"}\n");
        assert_eq!(items.len(), 2);
        for (i, item) in items.iter().enumerate() {
            let message = item.as_ref().unwrap_err();
            assert!(
                message.starts_with(&format!("invalid JSON on line {}", i + 1)),
                "{message}"
            );
            assert!(!message.contains('\n'));
        }
    }

    #[test]
    fn empty_input_has_no_documents() {
        assert!(docs(b"").is_empty());
        assert!(docs(b"\n \n\r\n").is_empty());
    }
}
