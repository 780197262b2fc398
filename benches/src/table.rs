//! Cells and markdown tables.

use crate::stats::summary;

/// `median (min–max)` with `decimals` decimals.
pub fn cell(values: &[f64], decimals: usize) -> String {
    let (med, min, max) = summary(values);
    format!("{med:.decimals$} ({min:.decimals$}–{max:.decimals$})")
}

/// Like [`cell`], for operations per second: whole numbers with thousands separators.
pub fn ops_cell(values: &[f64]) -> String {
    let (med, min, max) = summary(values);
    format!("{} ({}–{})", group(med), group(min), group(max))
}

/// A whole number with thousands separators: `1,234,567`.
pub fn group(v: f64) -> String {
    let digits = format!("{v:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `256 B`, `4 KiB`.
pub fn size_label(size: u64) -> String {
    match size {
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

/// A markdown table: a title, a header row, rows, and notes under it.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    /// An empty table.
    pub fn new(title: &str, header: &[&str]) -> Self {
        Table {
            title: title.to_owned(),
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Adds a note, printed as a list item under the table.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Prints the table to stdout.
    pub fn print(&self) {
        println!("### {}\n", self.title);
        println!("| {} |", self.header.join(" | "));
        println!("|{}", "---|".repeat(self.header.len()));
        for r in &self.rows {
            println!("| {} |", r.join(" | "));
        }
        if !self.notes.is_empty() {
            println!();
            for n in &self.notes {
                println!("- {n}");
            }
        }
        println!();
    }
}
