//! `-o table|json|yaml`: every command that prints data builds one
//! serialisable value and one table, and this module picks the rendering.

use serde::Serialize;
use std::fmt;

/// How data is printed. Tables are for people; JSON and YAML are stable for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

/// Errors from rendering machine-readable output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot render JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot render YAML: {0}")]
    Yaml(String),
}

/// Renders `value` as JSON or YAML, or `table()` for the table format; the
/// table is built lazily so scripts never pay for it.
pub fn render<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce() -> Table,
) -> Result<String, OutputError> {
    match format {
        OutputFormat::Table => Ok(table().to_string()),
        OutputFormat::Json => Ok(serde_json::to_string_pretty(value)? + "\n"),
        OutputFormat::Yaml => {
            serde_saphyr::to_string(value).map_err(|e| OutputError::Yaml(e.to_string()))
        }
    }
}

/// A plain text table with left-aligned columns, as kubectl prints them.
#[derive(Debug, Default, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            let mut out = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == columns {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<width$}   "));
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(f, &self.headers)?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_to_the_widest_cell() {
        let mut t = Table::new(["NAME", "STATE"]);
        t.row(["mgmt-worker-0", "Running"]);
        t.row(["a", "Stopped"]);
        let text = t.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME            STATE");
        assert_eq!(lines[1], "mgmt-worker-0   Running");
        assert_eq!(lines[2], "a               Stopped");
    }

    #[test]
    fn json_and_yaml_render_the_value_not_the_table() {
        #[derive(Serialize)]
        struct V {
            name: &'static str,
        }
        let v = V { name: "mgmt" };
        let json = render(OutputFormat::Json, &v, || panic!("table built")).unwrap();
        assert_eq!(json, "{\n  \"name\": \"mgmt\"\n}\n");
        let yaml = render(OutputFormat::Yaml, &v, || panic!("table built")).unwrap();
        assert_eq!(yaml.trim(), "name: mgmt");
    }
}
