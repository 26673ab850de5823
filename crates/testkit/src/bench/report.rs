//! One table for people, the same as JSON for tracking.

use serde::Serialize;

pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub figure: String,
    pub kuvert: Option<f64>,
    pub unit: String,
    /// The machine's figure beside it, when there is one.
    pub machine: Option<f64>,
    /// kuvert ÷ machine (median of the per-run ratios).
    pub ratio: Option<f64>,
    pub target: String,
    /// None: no target for this line.
    pub met: Option<bool>,
}

impl Row {
    pub fn new(figure: impl Into<String>, kuvert: f64, unit: &str) -> Row {
        Row {
            figure: figure.into(),
            kuvert: Some(kuvert),
            unit: unit.to_owned(),
            machine: None,
            ratio: None,
            target: String::new(),
            met: None,
        }
    }

    pub fn machine(mut self, machine: f64, ratio: f64) -> Row {
        self.machine = Some(machine);
        self.ratio = Some(ratio);
        self
    }

    pub fn target(mut self, target: &str, met: bool) -> Row {
        self.target = target.to_owned();
        self.met = Some(met);
        self
    }
}

fn number(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".to_owned(),
        Some(v) if v.is_nan() => "n/a".to_owned(),
        Some(v) if unit == "ms" || unit == "×" => format!("{v:.2} {unit}"),
        Some(v) if v.abs() >= 100.0 => format!("{} {unit}", thousands(v.round() as i64)),
        Some(v) => format!("{v:.1} {unit}"),
    }
    .trim()
    .to_owned()
}

fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

/// A Markdown table (it reads as plain text too).
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.figure.clone(),
                number(r.kuvert, &r.unit),
                number(r.machine, &r.unit),
                r.ratio
                    .map_or("—".to_owned(), |x| format!("{:.1} %", x * 100.0)),
                if r.target.is_empty() {
                    "—".to_owned()
                } else {
                    r.target.clone()
                },
                match r.met {
                    None => "—".to_owned(),
                    Some(true) => "yes".to_owned(),
                    Some(false) => "**no**".to_owned(),
                },
            ]
        })
        .collect();
    let head = [
        "figure",
        "kuvert",
        "machine limit",
        "ratio",
        "target",
        "met?",
    ];
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::from("|");
        for (c, w) in row.iter().zip(&widths) {
            s.push_str(&format!(" {c}{} |", " ".repeat(w - c.chars().count())));
        }
        s.push('\n');
        s
    };
    let mut out = line(&head.map(str::to_owned));
    out.push('|');
    for w in &widths {
        out.push_str(&format!("{}|", "-".repeat(w + 2)));
    }
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}
