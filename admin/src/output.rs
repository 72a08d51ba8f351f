//! What a verb prints: an aligned table as mqadmin prints it (`#Header` columns), key/value
//! lines, or JSON for scripts (`--json`).

use serde_json::{Map, Value};

/// A verb's result, printable as text or JSON.
pub enum Report {
    Table(Table),
    /// `key: value` lines (brokerStatus, getBrokerConfig, message details).
    Pairs(Vec<(String, String)>),
    /// Already JSON (topicRoute prints the route as mqadmin does).
    Json(Value),
    /// A one-line confirmation ("create topic to 127.0.0.1:10911 success.").
    Done(Vec<String>),
}

/// Rows under named columns.
pub struct Table {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Totals printed under the table (`Diff Total: 12`); in JSON, keys beside `rows`.
    pub footer: Vec<(&'static str, String)>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
            footer: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        self.rows.push(row);
    }

    fn to_text(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len() + 1).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| format!("#{h}")).collect();
        push_line(&mut out, &header, &widths);
        for row in &self.rows {
            push_line(&mut out, row, &widths);
        }
        for (name, value) in &self.footer {
            out.push_str(&format!("\n{name}: {value}"));
        }
        if !self.footer.is_empty() {
            out.push('\n');
        }
        out
    }

    fn to_json(&self) -> Value {
        let rows = self.rows.iter().map(|row| {
            let object: Map<String, Value> = self
                .headers
                .iter()
                .zip(row)
                .map(|(h, cell)| (json_key(h), Value::String(cell.clone())))
                .collect();
            Value::Object(object)
        });
        let rows = Value::Array(rows.collect());
        if self.footer.is_empty() {
            return rows;
        }
        let mut object = Map::new();
        object.insert("rows".to_string(), rows);
        for (name, value) in &self.footer {
            object.insert(json_key(name), Value::String(value.clone()));
        }
        Value::Object(object)
    }
}

fn push_line(out: &mut String, cells: &[String], widths: &[usize]) {
    let last = cells.len().saturating_sub(1);
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i == last {
            out.push_str(cell);
        } else {
            out.push_str(&format!("{cell:<width$}  "));
        }
    }
    out.push('\n');
}

/// "Broker Offset" → "brokerOffset".
fn json_key(header: &str) -> String {
    let mut key = String::new();
    for (i, word) in header
        .split([' ', '(', ')'])
        .filter(|w| !w.is_empty())
        .enumerate()
    {
        if i == 0 {
            key.push_str(&word.to_lowercase());
        } else {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                key.extend(first.to_uppercase());
                key.push_str(&chars.as_str().to_lowercase());
            }
        }
    }
    key
}

impl Report {
    pub fn render(&self, json: bool) -> String {
        if json {
            let value = match self {
                Report::Table(table) => table.to_json(),
                Report::Pairs(pairs) => Value::Object(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                ),
                Report::Json(value) => value.clone(),
                Report::Done(lines) => serde_json::json!({ "ok": true, "detail": lines }),
            };
            return format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        match self {
            Report::Table(table) => table.to_text(),
            Report::Pairs(pairs) => {
                let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k:<width$} : {v}\n"))
                    .collect()
            }
            Report::Json(value) => {
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(value).unwrap_or_default()
                )
            }
            Report::Done(lines) => lines.iter().map(|l| format!("{l}\n")).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_convert_to_json() {
        let mut table = Table::new(&["Broker Name", "QID", "Max Offset"]);
        table.push(vec!["broker-a".into(), "0".into(), "12".into()]);
        let text = Report::Table(table).render(false);
        assert_eq!(
            text,
            "#Broker Name  #QID  #Max Offset\nbroker-a      0     12\n"
        );
        let mut table = Table::new(&["Broker Name", "QID"]);
        table.push(vec!["b".into(), "1".into()]);
        let json: Value = serde_json::from_str(&Report::Table(table).render(true)).unwrap();
        assert_eq!(json[0]["brokerName"], "b");
        assert_eq!(json[0]["qid"], "1");
    }
}
