//! Result tables written as Markdown (for reading) and CSV (for tools); HTML pages show them
//! with the template macro `featleak.table` (eval/templates/featleak.html).

/// A table of already formatted cells.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells, one cell per header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and no rows.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per header.
    pub fn push(&mut self, row: Vec<String>) {
        assert_eq!(
            row.len(),
            self.headers.len(),
            "row width differs from the header"
        );
        self.rows.push(row);
    }

    /// GitHub-flavoured Markdown, `|` in cells escaped.
    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| {
            format!(
                "| {} |\n",
                cells
                    .iter()
                    .map(|c| c.replace('|', "\\|"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        };
        let mut out = line(&self.headers);
        out.push_str(&format!("|{}\n", "---|".repeat(self.headers.len())));
        self.rows.iter().for_each(|r| out.push_str(&line(r)));
        out
    }

    /// The table without the columns named in `names`.
    pub fn without_columns(&self, names: &[&str]) -> Table {
        let keep: Vec<usize> = (0..self.headers.len())
            .filter(|&i| !names.contains(&self.headers[i].as_str()))
            .collect();
        let pick = |cells: &[String]| keep.iter().map(|&i| cells[i].clone()).collect();
        Table {
            headers: pick(&self.headers),
            rows: self.rows.iter().map(|r| pick(r)).collect(),
        }
    }

    /// RFC 4180 CSV with a header row.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.headers).expect("writing to memory");
        for r in &self.rows {
            w.write_record(r).expect("writing to memory");
        }
        String::from_utf8(w.into_inner().expect("flush to memory")).expect("cells are UTF-8")
    }
}

/// A number with `digits` decimals, or `—` for a missing or non-finite value (tables never show NaN).
pub fn fmt_num(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_csv() {
        let mut t = Table::new(["name", "value"]);
        t.push(vec!["a|b".into(), fmt_num(Some(0.12345), 3)]);
        t.push(vec!["c, d".into(), fmt_num(Some(f64::NAN), 3)]);
        assert_eq!(
            t.to_markdown(),
            "| name | value |\n|---|---|\n| a\\|b | 0.123 |\n| c, d | — |\n"
        );
        assert_eq!(t.to_csv(), "name,value\na|b,0.123\n\"c, d\",—\n");
        assert_eq!(
            t.without_columns(&["name"]).to_markdown(),
            "| value |\n|---|\n| 0.123 |\n| — |\n"
        );
        let html = crate::html::render(
            "t.html",
            "{% import \"featleak.html\" as featleak %}{{ featleak.table(t) }}",
            serde_json::json!({ "t": t }),
        )
        .unwrap();
        assert_eq!(
            html,
            "<table>\n<thead><tr><th>name</th><th>value</th></tr></thead>\n<tbody>\n\
             <tr><td>a|b</td><td>0.123</td></tr>\n<tr><td>c, d</td><td>—</td></tr>\n</tbody></table>\n"
        );
    }
}
