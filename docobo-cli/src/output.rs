//! Listings as aligned tables for people, or one JSON array for scripts (`--json`).

use serde_json::Value;

/// `text` with control characters (terminal escapes, newlines) shown as `\u{..}`: stored
/// reasons can carry text a provider sent, which must not drive the operator's terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

/// Prints `rows` (objects with the same keys as `columns`) as a table or a JSON array.
pub fn print(json: bool, columns: &[&str], rows: Vec<Value>) {
    if json {
        println!("{}", Value::Array(rows));
        return;
    }
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let cell = |row: &Value, col: &str| match &row[col] {
        Value::Null => "-".to_owned(),
        Value::String(s) => printable(s),
        other => other.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| rows.iter().map(|r| cell(r, c).chars().count()).chain([c.len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|c| c.to_uppercase()).collect());
    for row in &rows {
        line(columns.iter().map(|c| cell(row, c)).collect());
    }
}

/// An RFC 3339 time for JSON, or `null`.
pub(crate) fn time_text(t: Option<time::OffsetDateTime>) -> serde_json::Value {
    t.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

#[cfg(test)]
mod tests {
    #[test]
    fn l1_terminal_escapes_and_newlines_are_shown_not_obeyed() {
        assert_eq!(super::printable("ok\u{1b}[2Jfake\nline"), "ok\\u{1b}[2Jfake\\u{a}line");
        assert_eq!(super::printable("đồng 5.00"), "đồng 5.00");
    }
}
