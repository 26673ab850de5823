//! The sent page's chart: messages per day by outcome, drawn on the server
//! as inline SVG (no script; colours from CSS classes, no `style`
//! attribute, which the CSP forbids) with a table of the same numbers
//! beside it. Each outcome has a pattern as well as a colour, and the
//! legend and table say it in words: never colour alone.

use super::Lang;
use kuvert_domain::status::DeliveryStatus;
use kuvert_store::web_senders::DailyOutcome;

/// The outcomes the chart tells apart, bottom to top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Underway,
    Paper,
    NotDelivered,
    Failed,
}

pub const OUTCOMES: [Outcome; 5] = [
    Outcome::Delivered,
    Outcome::Underway,
    Outcome::Paper,
    Outcome::NotDelivered,
    Outcome::Failed,
];

impl Outcome {
    pub fn of(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Accepted => Self::Underway,
            DeliveryStatus::Paper => Self::Paper,
            DeliveryStatus::NotDelivered => Self::NotDelivered,
            DeliveryStatus::Failed => Self::Failed,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Delivered => 0,
            Self::Underway => 1,
            Self::Paper => 2,
            Self::NotDelivered => 3,
            Self::Failed => 4,
        }
    }

    /// The CSS class (colour) and the SVG pattern id share this name.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Delivered => "o-delivered",
            Self::Underway => "o-underway",
            Self::Paper => "o-paper",
            Self::NotDelivered => "o-not-delivered",
            Self::Failed => "o-failed",
        }
    }

    pub fn label(&self, lang: &Lang) -> &'static str {
        match self {
            Self::Delivered => lang.pick("Levererade", "Delivered"),
            Self::Underway => lang.pick("På väg", "On their way"),
            Self::Paper => lang.pick("På papper", "By paper"),
            Self::NotDelivered => lang.pick("Inte levererade", "Not delivered"),
            Self::Failed => lang.pick("Misslyckade", "Failed"),
        }
    }
}

/// Drawing area, in the SVG's own units (it scales to the page width).
/// About a phone's width, so that its text is about the page's size there.
const LEFT: u32 = 28;
const TOP: u32 = 8;
const PLOT_HEIGHT: u32 = 120;
const DAY_WIDTH: u32 = 10;
pub const BAR_WIDTH: u32 = 7;

pub struct Segment {
    pub class: &'static str,
    pub y: u32,
    pub height: u32,
}

pub struct Bar {
    pub x: u32,
    pub segments: Vec<Segment>,
    /// Said on hover (the SVG `<title>`): the day and its counts.
    pub title: String,
    /// The day under the axis, every seventh day.
    pub label: Option<String>,
}

pub struct Tick {
    pub y: u32,
    pub value: i64,
}

/// A day of the table: its counts in [`OUTCOMES`] order, and the total.
pub struct Row {
    pub day: String,
    pub counts: [i64; 5],
    pub total: i64,
}

pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub plot_bottom: u32,
    pub plot_right: u32,
    pub label_y: u32,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    /// Days with at least one message (the table leaves empty days out).
    pub rows: Vec<Row>,
    pub totals: [i64; 5],
    pub total: i64,
    /// The chart in one sentence, for the SVG's description.
    pub summary: String,
    pub outcomes: [Outcome; 5],
}

/// The smallest of 1, 2, 5, 10, 20, 50, … at least `n` (and at least 1).
fn nice_ceiling(n: i64) -> i64 {
    let mut step = 1_i64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= n {
                return step.saturating_mul(m);
            }
        }
        step = step.saturating_mul(10);
    }
}

fn scaled(value: i64, max: i64) -> u32 {
    let h = i128::from(value) * i128::from(PLOT_HEIGHT) / i128::from(max.max(1));
    u32::try_from(h).unwrap_or(PLOT_HEIGHT)
}

impl Chart {
    /// The chart of the days `from..=until` (UTC) from the store's counts.
    pub fn new(from: time::Date, until: time::Date, outcomes: &[DailyOutcome], lang: Lang) -> Self {
        let mut days = Vec::new();
        let mut day = from;
        while day <= until {
            days.push((day, [0_i64; 5]));
            match day.next_day() {
                Some(next) => day = next,
                None => break,
            }
        }
        for outcome in outcomes {
            if let Some((_, counts)) = days.iter_mut().find(|(d, _)| d.to_string() == outcome.day) {
                counts[Outcome::of(outcome.status).index()] += outcome.count;
            }
        }
        let max_total = days
            .iter()
            .map(|(_, c)| c.iter().sum::<i64>())
            .max()
            .unwrap_or(0);
        let max = nice_ceiling(max_total);
        let plot_bottom = TOP + PLOT_HEIGHT;
        let mut bars = Vec::with_capacity(days.len());
        let mut rows = Vec::new();
        let mut totals = [0_i64; 5];
        for (i, (day, counts)) in days.iter().enumerate() {
            let x = LEFT + u32::try_from(i).unwrap_or(0) * DAY_WIDTH + (DAY_WIDTH - BAR_WIDTH) / 2;
            let mut segments = Vec::new();
            let mut below = 0_i64;
            for outcome in OUTCOMES {
                let n = counts[outcome.index()];
                totals[outcome.index()] += n;
                if n == 0 {
                    continue;
                }
                let top = scaled(below + n, max);
                let bottom = scaled(below, max);
                segments.push(Segment {
                    class: outcome.class(),
                    y: plot_bottom - top,
                    height: (top - bottom).max(1),
                });
                below += n;
            }
            let total: i64 = counts.iter().sum();
            let words: Vec<String> = OUTCOMES
                .iter()
                .filter(|o| counts[o.index()] > 0)
                .map(|o| format!("{} {}", counts[o.index()], o.label(&lang).to_lowercase()))
                .collect();
            let title = if words.is_empty() {
                format!("{day}: {}", lang.pick("inga meddelanden", "no messages"))
            } else {
                format!("{day}: {}", words.join(", "))
            };
            // Today and each week back from it.
            let label = ((days.len() - 1 - i) % 7 == 0)
                .then(|| format!("{}/{}", day.day(), u8::from(day.month())));
            bars.push(Bar {
                x,
                segments,
                title,
                label,
            });
            if total > 0 {
                rows.push(Row {
                    day: day.to_string(),
                    counts: *counts,
                    total,
                });
            }
        }
        let mut values = vec![0, max / 2, max];
        values.dedup();
        let ticks = values
            .into_iter()
            .map(|value| Tick {
                y: plot_bottom - scaled(value, max),
                value,
            })
            .collect();
        let total: i64 = totals.iter().sum();
        let summary = format!(
            "{} {from} {} {until}: {total} {}. {}",
            lang.pick("Från", "From"),
            lang.pick("till", "to"),
            lang.pick("meddelanden", "messages"),
            OUTCOMES
                .iter()
                .map(|o| format!("{} {}", o.label(&lang), totals[o.index()]))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let plot_right = LEFT + u32::try_from(days.len()).unwrap_or(0) * DAY_WIDTH;
        Chart {
            width: plot_right + 8,
            height: plot_bottom + 20,
            plot_bottom,
            plot_right,
            label_y: plot_bottom + 14,
            bars,
            ticks,
            rows,
            totals,
            total,
            summary,
            outcomes: OUTCOMES,
        }
    }

    pub fn left(&self) -> u32 {
        LEFT
    }

    pub fn bar_width(&self) -> u32 {
        BAR_WIDTH
    }

    pub fn total_of(&self, outcome: &Outcome) -> i64 {
        self.totals[outcome.index()]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_table_and_the_bars_hold_the_same_numbers() {
        let from = time::macros::date!(2026 - 11 - 02);
        let until = time::macros::date!(2026 - 12 - 01);
        let outcomes = [
            DailyOutcome {
                day: "2026-11-02".into(),
                status: DeliveryStatus::Delivered,
                count: 7,
            },
            DailyOutcome {
                day: "2026-12-01".into(),
                status: DeliveryStatus::Failed,
                count: 2,
            },
            DailyOutcome {
                day: "2026-12-01".into(),
                status: DeliveryStatus::Delivered,
                count: 1,
            },
            // Outside the days shown: left out.
            DailyOutcome {
                day: "2026-10-01".into(),
                status: DeliveryStatus::Paper,
                count: 5,
            },
        ];
        let chart = Chart::new(from, until, &outcomes, Lang::Sv);
        assert_eq!(chart.bars.len(), 30);
        assert_eq!(chart.rows.len(), 2);
        assert_eq!(chart.rows[1].counts, [1, 0, 0, 0, 2]);
        assert_eq!(chart.total, 10);
        assert_eq!(chart.bars[0].segments.len(), 1);
        // The highest bar (7 of a scale to 10) and the stack of the last day.
        assert_eq!(chart.bars[0].segments[0].height, 84);
        assert!(chart.bars[29].label.is_some() && chart.bars[22].label.is_some());
        assert!(chart.bars[28].label.is_none());
        let last = &chart.bars[29];
        assert_eq!(last.segments.len(), 2);
        assert_eq!(
            last.segments[0].y + last.segments[0].height,
            chart.plot_bottom
        );
        assert!(last.title.contains("2 misslyckade"), "{}", last.title);
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(201), 500);
    }
}
