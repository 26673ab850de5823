//! Identity numbers against the shared reference vectors, plus properties over
//! generated numbers. The check-digit and century logic here is written again,
//! independently, so the tests do not just repeat the implementation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kuvert_domain::identity::{
    IdentityError, OrganisationNumber, PersonalIdentityKind, PersonalIdentityNumber, RecipientId,
};
use proptest::prelude::*;
use time::Date;
use time::macros::date;

/// The reference date the vectors were checked against.
const TODAY: Date = date!(2026 - 11 - 24);
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/identity/"
);

/// Reads a vector file; a missing shared folder is a failure, never a skip.
fn read_vectors(name: &str) -> String {
    let path = format!("{VECTORS}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("identity vectors missing: cannot read {path}: {e} (shared/ must sit beside the repository)")
    })
}

/// `kind number expected`, where the number may itself contain a space.
fn cases(text: &str) -> Vec<(&str, &str, bool)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let line = line.trim();
            let (kind, rest) = line.split_once(char::is_whitespace).unwrap();
            let (number, expected) = rest.trim().rsplit_once(char::is_whitespace).unwrap();
            let expected = match expected {
                "true" => true,
                "false" => false,
                other => panic!("bad expected value {other:?} in line {line:?}"),
            };
            (kind, number.trim(), expected)
        })
        .collect()
}

fn parse_case(kind: &str, number: &str) -> Result<String, IdentityError> {
    match kind {
        "pnr" => PersonalIdentityNumber::parse(number, TODAY).map(|p| p.as_str().to_owned()),
        "org" => RecipientId::parse(number, TODAY).map(|r| r.as_str().to_owned()),
        other => panic!("unknown kind {other:?}"),
    }
}

#[test]
fn curated_cases() {
    let text = read_vectors("cases.txt");
    let cases = cases(&text);
    assert_eq!(cases.len(), 114, "cases.txt changed size");
    let mut failures = Vec::new();
    for (kind, number, expected) in &cases {
        let got = parse_case(kind, number);
        if got.is_ok() != *expected {
            failures.push(format!(
                "{kind} {number:?}: expected {expected}, got {got:?}"
            ));
        }
        // Whatever form was accepted, the canonical form reads back the same.
        if let Ok(canonical) = got {
            let back = RecipientId::parse_canonical(&canonical).unwrap();
            assert_eq!(back.as_str(), canonical);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn skatteverket_test_numbers() {
    let text = read_vectors("cases2.txt");
    let cases = cases(&text);
    assert_eq!(cases.len(), 43_393, "cases2.txt changed size");
    let mut failures = Vec::new();
    for (kind, number, expected) in &cases {
        assert_eq!(*kind, "pnr");
        assert!(*expected, "cases2.txt holds valid numbers only");
        match PersonalIdentityNumber::parse(number, TODAY) {
            Ok(p) => {
                let again = PersonalIdentityNumber::parse(p.as_str(), TODAY).unwrap();
                assert_eq!(again, p);
                let r = RecipientId::parse_canonical(p.as_str()).unwrap();
                assert_eq!(r, RecipientId::Person(p));
                assert_eq!(RecipientId::parse(p.as_str(), TODAY).unwrap(), r);
            }
            Err(e) => failures.push(format!("{number}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the Skatteverket numbers rejected, e.g.:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Luhn check digit for nine digits, written independently of the crate.
fn luhn(nine: &str) -> u32 {
    let sum: u32 = nine
        .chars()
        .map(|c| c.to_digit(10).unwrap())
        .zip([2, 1].into_iter().cycle())
        .map(|(d, w)| {
            let p = d * w;
            p / 10 + p % 10
        })
        .sum();
    (10 - sum % 10) % 10
}

/// A valid personal number, as (year, month, day as written, serial).
#[derive(Debug, Clone)]
struct Generated {
    year: i32,
    month: u8,
    written_day: u8,
    serial: u16,
}

impl Generated {
    fn canonical(&self) -> String {
        let body = format!(
            "{:02}{:02}{:02}{:03}",
            self.year % 100,
            self.month,
            self.written_day,
            self.serial
        );
        format!("{:02}{body}{}", self.year / 100, luhn(&body))
    }

    /// Completed years on TODAY, by (month, day) with unknown parts as 0;
    /// `None` if born after TODAY.
    fn age_today(&self) -> Option<i32> {
        let (m, d) = (self.month, self.written_day % 60);
        let mut age = TODAY.year() - self.year;
        if (u8::from(TODAY.month()), TODAY.day()) < (m, d) {
            age -= 1;
        }
        (age >= 0).then_some(age)
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    let personnummer = (1830i32..=2026, 1u16..=366).prop_filter_map("valid date", |(y, ord)| {
        Date::from_ordinal_date(y, ord)
            .ok()
            .map(|d| (y, u8::from(d.month()), d.day()))
    });
    let birth = prop_oneof![
        3 => personnummer.clone().prop_map(|(y, m, d)| (y, m, d)),
        // Samordningsnummer: day + 60, range-checked only (incl. 31 Feb).
        1 => (1830i32..=2026, 1u8..=12, 61u8..=91),
        // Samordningsnummer with unknown month or day.
        1 => (1830i32..=2026, 0u8..=12, Just(60u8)),
        1 => (1830i32..=2026, Just(0u8), 61u8..=91),
    ];
    (birth, 1u16..=999).prop_map(|((year, month, written_day), serial)| Generated {
        year,
        month,
        written_day,
        serial,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn canonical_round_trips(g in generated()) {
        let canonical = g.canonical();
        let p = PersonalIdentityNumber::parse(&canonical, TODAY).unwrap();
        prop_assert_eq!(p.as_str(), canonical.as_str());
        let expected_kind = if g.written_day >= 60 {
            PersonalIdentityKind::Samordningsnummer
        } else {
            PersonalIdentityKind::Personnummer
        };
        prop_assert_eq!(p.kind(), expected_kind);
        prop_assert_eq!(RecipientId::parse(&canonical, TODAY).unwrap(), RecipientId::Person(p));
        prop_assert_eq!(RecipientId::parse_canonical(&canonical).unwrap(), RecipientId::Person(p));
        let hyphen12 = format!("{}-{}", &canonical[..8], &canonical[8..]);
        prop_assert_eq!(PersonalIdentityNumber::parse(&hyphen12, TODAY).unwrap(), p);
        if let (Some(birth), Some(age)) = (p.birth_date(), g.age_today()) {
            prop_assert_eq!(birth.year(), g.year);
            prop_assert_eq!(p.age_on(TODAY), Some(age as u32));
        }
    }

    #[test]
    fn ten_digit_forms_pick_the_century(g in generated()) {
        let canonical = g.canonical();
        let p = PersonalIdentityNumber::parse(&canonical, TODAY).unwrap();
        let (date, rest) = canonical[2..].split_at(6);
        // The age the person turns THIS calendar year decides the separator
        // (folkbokföringslagen 18 §), not the completed years on TODAY.
        let turns = TODAY.year() - g.year;
        // Born later this year: not yet born, and a century earlier would
        // be written with '+', so the ten-digit '-' form is refused.
        let unborn = p.birth_date().is_some_and(|born| born > TODAY);
        if unborn {
            let hyphen = format!("{date}-{rest}");
            prop_assert_eq!(
                PersonalIdentityNumber::parse(&hyphen, TODAY),
                Err(IdentityError::BornLaterThisYear)
            );
        } else if (0..100).contains(&turns) {
            let hyphen = format!("{date}-{rest}");
            prop_assert_eq!(PersonalIdentityNumber::parse(&hyphen, TODAY).unwrap(), p);
            let bare = format!("{date}{rest}");
            prop_assert_eq!(PersonalIdentityNumber::parse(&bare, TODAY).unwrap(), p);
        } else if (100..200).contains(&turns) {
            let plus = format!("{date}+{rest}");
            prop_assert_eq!(PersonalIdentityNumber::parse(&plus, TODAY).unwrap(), p);
        }
    }

    #[test]
    fn every_wrong_check_digit_is_rejected(g in generated()) {
        let canonical = g.canonical();
        let right = canonical.as_bytes()[11];
        for wrong in (b'0'..=b'9').filter(|&d| d != right) {
            let mut bad = canonical.clone().into_bytes();
            bad[11] = wrong;
            let bad = String::from_utf8(bad).unwrap();
            prop_assert_eq!(
                PersonalIdentityNumber::parse(&bad, TODAY),
                Err(IdentityError::InvalidChecksum)
            );
            prop_assert_eq!(RecipientId::parse_canonical(&bad), Err(IdentityError::InvalidChecksum));
        }
    }

    #[test]
    fn output_never_shows_all_digits(g in generated()) {
        let canonical = g.canonical();
        let p = PersonalIdentityNumber::parse(&canonical, TODAY).unwrap();
        let r = RecipientId::Person(p);
        let all_shown = [format!("{p:?}"), format!("{p}"), format!("{r:?}"), format!("{r}"), r.masked()];
        for shown in all_shown {
            prop_assert!(!shown.contains(&canonical));
            prop_assert!(!shown.contains(&canonical[2..]));
            // Only the date part shows; serial and check digit are masked.
            let expected_mask = format!("{}-****", &canonical[..8]);
            prop_assert!(shown.contains(&expected_mask));
        }
    }

    #[test]
    fn organisation_numbers_round_trip(
        first in 1u8..=9, second in 0u8..=9, group in 2u8..=9, rest in 0u32..1_000_000,
    ) {
        let body = format!("{first}{second}{group}{rest:06}");
        let ten = format!("{body}{}", luhn(&body));
        let o = OrganisationNumber::parse(&ten).unwrap();
        prop_assert_eq!(o.as_str(), format!("16{ten}"));
        let hyphen = format!("{}-{}", &ten[..6], &ten[6..]);
        prop_assert_eq!(OrganisationNumber::parse(&hyphen).unwrap(), o);
        prop_assert_eq!(OrganisationNumber::parse(o.as_str()).unwrap(), o);
        let r = RecipientId::parse(&hyphen, TODAY).unwrap();
        prop_assert_eq!(r, RecipientId::Organisation(o));
        prop_assert_eq!(RecipientId::parse_canonical(o.as_str()).unwrap(), r);
        let shown = format!("{o:?}{o}{r:?}{r}");
        prop_assert!(!shown.contains(&ten));
        let right = ten.as_bytes()[9];
        for wrong in (b'0'..=b'9').filter(|&d| d != right) {
            let mut bad = ten.clone().into_bytes();
            bad[9] = wrong;
            let bad = String::from_utf8(bad).unwrap();
            prop_assert_eq!(OrganisationNumber::parse(&bad), Err(IdentityError::InvalidChecksum));
        }
    }

    /// The `identity` fuzz target's properties (docs/fuzzing.md), on
    /// number-shaped input and any day from 1900 to 2079.
    #[test]
    fn parsers_agree_and_accept_only_valid_numbers(
        s in prop_oneof![
            3 => written_number(),
            1 => "[ ]?[0-9]{0,8}[-+]?[0-9]{0,5}|16[0-9]{6}-[0-9]{4}|\\PC{0,14}",
        ],
        days in 0u16..=u16::MAX,
    ) {
        check_written_number(&s, date!(1900 - 01 - 01) + time::Duration::days(i64::from(days)));
    }

    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,20}") {
        let _ = PersonalIdentityNumber::parse(&s, TODAY);
        let _ = RecipientId::parse(&s, TODAY);
        let _ = RecipientId::parse_canonical(&s);
        let _ = OrganisationNumber::parse(&s);
    }
}

/// A number as people write it, mostly with the right check digit: 10 or 12
/// digits, any date-like digits (organisation numbers included), an optional
/// separator before the last four.
fn written_number() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(""), Just("16"), Just("18"), Just("19"), Just("20")],
        0u8..=99,
        0u8..=39,
        0u8..=95,
        0u16..=999,
        prop_oneof![Just(""), Just("-"), Just("+")],
        proptest::bool::weighted(0.8),
    )
        .prop_map(|(century, yy, mm, dd, serial, sep, right)| {
            let nine = format!("{yy:02}{mm:02}{dd:02}{serial:03}");
            let check = if right {
                luhn(&nine)
            } else {
                (luhn(&nine) + 1) % 10
            };
            format!("{century}{}{sep}{}{check}", &nine[..6], &nine[6..])
        })
}

/// Whatever is accepted is 12 digits with a right Luhn digit and a valid
/// date, keeps the digits as written, picks the century as documented, reads
/// back the same, and the three parsers agree (the two specific ones never
/// both accept).
fn check_written_number(input: &str, today: Date) {
    let written: String = input.chars().filter(char::is_ascii_digit).collect();
    let plus = input.contains('+');
    let person = PersonalIdentityNumber::parse(input, today);
    let organisation = OrganisationNumber::parse(input);
    let recipient = RecipientId::parse(input, today);
    for e in [person.err(), organisation.err(), recipient.err()]
        .into_iter()
        .flatten()
    {
        assert!(!e.to_string().chars().any(|c| c.is_ascii_digit()));
    }
    let shape = |s: &str| {
        assert!(
            s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()),
            "{s:?}"
        );
        assert_eq!(luhn(&s[2..11]).to_string(), &s[11..], "{s}: check digit");
        if written.len() == 12 {
            assert_eq!(s, written);
        } else {
            assert!(s.ends_with(&written), "{s} from {input:?}");
        }
    };
    if let Ok(p) = person {
        let s = p.as_str();
        shape(s);
        let year: i32 = s[..4].parse().unwrap();
        let month: u8 = s[4..6].parse().unwrap();
        let day: u8 = s[6..8].parse().unwrap();
        assert!(year >= 1800 && &s[8..11] != "000", "{s}");
        if day >= 60 {
            assert!(month <= 12 && day <= 91, "{s}");
        } else {
            assert_eq!(p.birth_date().map(|d| d.year()), Some(year), "{s}");
        }
        if written.len() == 10 {
            // By calendar year alone: '-' turns 0..=99 this year, '+' 100..=199.
            let shift = if plus { 100 } else { 0 };
            let turns = today.year() - year;
            assert!((shift..shift + 100).contains(&turns), "{s} on {today}");
        }
        assert_eq!(
            PersonalIdentityNumber::parse(s, date!(2101 - 07 - 15)),
            Ok(p)
        );
        assert_eq!(RecipientId::parse_canonical(s), Ok(RecipientId::Person(p)));
    }
    if let Ok(o) = organisation {
        let s = o.as_str();
        shape(s);
        assert!(
            s.starts_with("16") && s.as_bytes()[4] >= b'2' && !plus,
            "{s}"
        );
        assert_eq!(
            RecipientId::parse_canonical(s),
            Ok(RecipientId::Organisation(o))
        );
    }
    assert!(!(person.is_ok() && organisation.is_ok()), "{input:?}");
    match recipient {
        Ok(RecipientId::Person(p)) => assert_eq!(person, Ok(p)),
        Ok(RecipientId::Organisation(o)) => assert_eq!(organisation, Ok(o)),
        Err(_) => assert!(person.is_err() && organisation.is_err(), "{input:?}"),
    }
    if let Ok(r) = RecipientId::parse_canonical(input) {
        assert_eq!(r.as_str(), input);
    }
}
