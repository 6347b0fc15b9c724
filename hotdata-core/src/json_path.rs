//! Where in a JSON text a decode error is: the path of the value at a byte position.
//!
//! A body that does not fit its model is decoded once, plainly, and a failure is explained
//! afterwards from serde_json's position (the byte it stopped at) by walking the text up to
//! there. That is the same path a path-tracking deserializer reports (`columns[1]`,
//! `inner.list[1].k`, `.` for the whole body), without decoding every body twice or
//! instantiating each model's decoder a second time for a tracking deserializer: one
//! decoder per model keeps the crate's compile time and the browser build's size down.

/// One open container on the way to the position: an object with the key being read, or
/// an array with the index of the element being read.
enum Frame {
    Object(Option<String>),
    Array(usize),
}

fn render(frames: &[Frame]) -> String {
    let mut out = String::new();
    for f in frames {
        match f {
            Frame::Object(Some(key)) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

/// The index just past the string whose opening quote is at `start` (or the end of `text`).
fn string_end(text: &[u8], start: usize) -> usize {
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

/// The index just past the number or literal starting at `start`.
fn scalar_end(text: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < text.len()
        && !matches!(text[i], b',' | b']' | b'}' | b':' | b' ' | b'\t' | b'\n' | b'\r' | b'"')
    {
        i += 1;
    }
    i.max(start + 1)
}

/// The path of the value that byte `at` of `text` belongs to: a scalar's own path, or for a
/// closing `}` / `]` the container's (a missing field is reported where its object ends).
/// Past the end, the innermost container still open. Never fails; a text malformed before
/// `at` gives the path as far as it could be followed.
pub(crate) fn path_at(text: &[u8], at: usize) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut wants_key = false;
    let mut i = 0;
    while i < text.len() && i <= at {
        match text[i] {
            b'{' => {
                stack.push(Frame::Object(None));
                wants_key = true;
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array(0));
                i += 1;
            }
            b'}' | b']' => {
                if i == at {
                    return render(&stack[..stack.len().saturating_sub(1)]);
                }
                stack.pop();
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Array(n)) => *n += 1,
                    Some(Frame::Object(_)) => wants_key = true,
                    None => {}
                }
                i += 1;
            }
            b'"' => {
                let end = string_end(text, i);
                if wants_key {
                    let key = serde_json::from_slice::<String>(&text[i..end]).unwrap_or_else(|_| {
                        // Unterminated or malformed: its bytes as they are, without the quotes.
                        let close = if end > i + 1 && text[end - 1] == b'"' { end - 1 } else { end };
                        String::from_utf8_lossy(&text[(i + 1).min(close)..close]).into_owned()
                    });
                    if let Some(Frame::Object(k)) = stack.last_mut() {
                        *k = Some(key);
                    }
                    wants_key = false;
                } else if at < end {
                    return render(&stack);
                }
                i = end;
            }
            b':' | b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            _ => {
                let end = scalar_end(text, i);
                if at < end {
                    return render(&stack);
                }
                i = end;
            }
        }
    }
    render(&stack)
}

/// The byte offset of serde_json's (1-based) `line` and `column` (the last byte it read), or
/// `None` for an error with no position.
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let line_start =
        if line == 1 { 0 } else { text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)? };
    Some((line_start + column).saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path of serde_json's error position for `body` decoded as `T`, checked against
    /// the path serde_path_to_error tracks while decoding it.
    fn path_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        let e = serde_json::from_str::<T>(body).unwrap_err();
        let ours = path_at(body.as_bytes(), offset_of(body, e.line(), e.column()).unwrap());
        let tracked = serde_path_to_error::deserialize::<_, T>(&mut serde_json::Deserializer::from_str(body))
            .unwrap_err()
            .path()
            .to_string();
        assert_eq!(ours, tracked, "{body}");
        ours
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        id: String,
        columns: Vec<String>,
        inner: Option<Inner>,
        n: Option<u32>,
        kind: Option<Kind>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        a: u8,
        list: Vec<Leaf>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Leaf {
        k: String,
    }

    #[derive(Debug, serde::Deserialize)]
    enum Kind {
        A,
    }

    #[test]
    fn the_path_is_the_one_a_tracking_deserializer_reports() {
        // (body, the path serde_path_to_error reports for it)
        let cases = [
            (r#"{"id":"r","columns":["a",5]}"#, "columns[1]"),
            (r#"{"id":"r"}"#, "."),
            (r#"{"columns":[],"id":"r","inner":{"a":300,"list":[]}}"#, "inner.a"),
            (r#"{"columns":[],"id":"r","inner":{"a":3,"list":[{"k":"x"},{"z":1}]}}"#, "inner.list[1]"),
            (r#"{"columns":[],"id":"r","inner":{"a":3,"list":[{"k":"x"},{"k":true}]}}"#, "inner.list[1].k"),
            (r#"{"columns":[],"id":"r","n":-1}"#, "n"),
            (r#"{"columns":[],"id":"r","kind":"C"}"#, "kind"),
            ("{\"columns\":[\"a\",\n \"b\"],\n\"id\":7}", "id"),
            (r#"{"columns":{"x":1},"id":"r"}"#, "columns"),
            (r#"{"id":"r\"}\u00e9,[","columns":["é",{"k":[1,{"z":[]}]}]}"#, "columns[1]"),
            (r#"{ "id" : "r" , "columns" : [ "a" , null ] }"#, "columns[1]"),
            (
                r#"{"id":"r","columns":["a"],"inner":{"a":1,"list":[{"k":"x","k2":{"deep":[[]]}},{"k":1.5e3}]}}"#,
                "inner.list[1].k",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(path_of::<Outer>(body), want, "{body}");
        }
        assert_eq!(path_of::<Vec<Outer>>(r#"[{"id":"a","columns":[]},{"id":"b"}]"#), "[1]");
        assert_eq!(path_of::<Vec<Vec<u8>>>("[[1],[2,-3]]"), "[1][1]");
    }

    proptest::proptest! {
        /// Any text (JSON-ish bytes weighted toward structure), any position: a path, no panic.
        #[test]
        fn any_text_and_position_gives_a_path(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"{}[]\",:\\ 0a-".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..64,
            ),
            at in 0usize..80,
        ) {
            let path = path_at(&text, at);
            proptest::prop_assert!(!path.is_empty());
            if let Ok(text) = std::str::from_utf8(&text) {
                let _ = offset_of(text, at % 4, at);
            }
        }
    }

    #[test]
    fn malformed_text_never_panics() {
        for body in [
            "", "{", "[", "\"", "{\"", "{\"\\", "{\"a", "{\"a\":", "}}}", "]", "[1,", "\"\\", "{\"\\u12",
            "nul",
        ] {
            for at in 0..body.len() + 3 {
                path_at(body.as_bytes(), at);
            }
        }
        assert_eq!(offset_of("abc", 0, 0), None);
        assert_eq!(offset_of("a\nb", 9, 1), None, "a line past the end");
    }
}
