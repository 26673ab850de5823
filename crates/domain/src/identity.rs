//! Swedish identity numbers: personnummer, samordningsnummer and
//! organisationsnummer, parsed once into canonical 12-digit values.
//!
//! A value of these types is valid by construction (its only constructors are
//! the `parse` functions). The full number is personal data: `Debug` and
//! `Display` mask the serial and check digits so a stray `{:?}` in a log line
//! does not leak it; `as_str` is the one deliberate way to get every digit.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::Date;

/// Why a written identity number was rejected. The messages never repeat the
/// input, so they are safe to log and to return to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("identity number is empty")]
    Empty,
    #[error(
        "identity number may only contain digits and one '-' or '+' before the last four digits"
    )]
    InvalidCharacters,
    #[error("identity number has the wrong number of digits")]
    InvalidLength,
    #[error("identity number does not contain a valid date")]
    InvalidDate,
    #[error("invalid check digit")]
    InvalidChecksum,
    #[error(
        "the birth date is later this year: with '-' that person is not born yet, and a person born a century earlier is written with '+'"
    )]
    BornLaterThisYear,
    #[error("invalid serial number")]
    InvalidSerial,
    #[error("not an organisation number (the group digit belongs to a personal identity number)")]
    InvalidOrganisationGroup,
}

/// No one alive was born earlier; also keeps the organisation prefix "16"
/// from ever reading as a birth year.
const MIN_BIRTH_YEAR: i32 = 1800;
/// Samordningsnummer add 60 to the day of birth.
const COORDINATION_DAY_OFFSET: u8 = 60;

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// The digits of a written number, and its separator if it had one.
struct Written {
    digits: [u8; 12],
    len: usize,
    separator: Option<u8>,
}

impl Written {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }
}

/// Splits the input into digits and an optional separator, checking only the
/// shape: 10 or 12 digits, at most one '-'/'+', and only right before the last
/// four digits (where people write it).
fn scan(input: &str) -> Result<Written, IdentityError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(IdentityError::Empty);
    }
    let mut digits = [0u8; 12];
    let mut len = 0;
    let mut separator = None;
    let mut separator_at = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => {
                let slot = digits.get_mut(len).ok_or(IdentityError::InvalidLength)?;
                *slot = b;
                len += 1;
            }
            b'-' | b'+' if separator.is_none() => {
                separator = Some(b);
                separator_at = len;
            }
            _ => return Err(IdentityError::InvalidCharacters),
        }
    }
    if len != 10 && len != 12 {
        return Err(IdentityError::InvalidLength);
    }
    if separator.is_some() && separator_at != len - 4 {
        return Err(IdentityError::InvalidCharacters);
    }
    Ok(Written {
        digits,
        len,
        separator,
    })
}

/// Value of a run of ASCII digits (callers pass at most four).
fn number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |acc, d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
}

/// The Luhn check digit for nine digits (weights 2,1,2,1,...), as ASCII.
fn luhn_check_digit(nine: &[u8]) -> u8 {
    let sum: u32 = nine
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d.wrapping_sub(b'0')) * if i % 2 == 0 { 2 } else { 1 };
            if v > 9 { v - 9 } else { v }
        })
        .sum();
    // `sum % 10` is a single digit, so this fits in a u8.
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// Whether the last ten digits (YYMMDDNNN + C) carry a correct check digit.
fn luhn_ok(ten: &[u8]) -> bool {
    match ten {
        [nine @ .., check] if nine.len() == 9 => luhn_check_digit(nine) == *check,
        _ => false,
    }
}

/// The first eight canonical digits and a fixed mask: the date part is often
/// needed to tell people apart in logs, the rest never is.
fn mask(canonical: &str) -> String {
    format!("{}-****", canonical.get(..8).unwrap_or(""))
}

/// Canonical storage is ASCII digits only, so this never falls back.
fn ascii_str(bytes: &[u8; 12]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Personnummer / samordningsnummer
// ---------------------------------------------------------------------------

/// A personnummer or samordningsnummer, stored as its canonical 12 digits
/// (YYYYMMDDNNNC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonalIdentityNumber([u8; 12]);

/// Which kind of personal number it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersonalIdentityKind {
    /// Assigned at population registration; the date is a real birth date.
    Personnummer,
    /// Coordination number for people not (yet) registered; day + 60.
    Samordningsnummer,
}

impl PersonalIdentityNumber {
    /// Accepts the forms people write: YYYYMMDDNNNC, YYYYMMDD-NNNC,
    /// YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC (surrounding whitespace is
    /// trimmed).
    ///
    /// `today` picks the century for the 10-digit forms, by calendar year
    /// (folkbokföringslagen 18 §: the separator changes at the turn of the
    /// year in which the person turns 100, not on the birthday). A `-` (or no
    /// separator) is someone who turns at most 99 this year: the latest year
    /// ending in the two digits that is not after `today`'s year. A `+` is
    /// someone who turns 100 or more this year: a century earlier again. The
    /// birth date itself does not move the century, so `261215+NNNC` on
    /// 2026-12-01 is born 1926, while `261215-NNNC` that day would be a
    /// person not yet born and is refused (`BornLaterThisYear`); from
    /// 2026-12-15 on it is born 2026. In the 12-digit forms the century is
    /// explicit and a separator is ignored.
    pub fn parse(input: &str, today: Date) -> Result<Self, IdentityError> {
        Self::from_written(&scan(input)?, today)
    }

    fn from_written(w: &Written, today: Date) -> Result<Self, IdentityError> {
        let digits = w.digits();
        if digits.len() == 10 {
            let twelve = expand_century(digits, w.separator == Some(b'+'), today)?;
            let number = Self::from_canonical(twelve)?;
            // A samordningsnummer with an unknown day has no birth date.
            if number.birth_date().is_some_and(|born| born > today) {
                return Err(IdentityError::BornLaterThisYear);
            }
            Ok(number)
        } else {
            Self::from_canonical(w.digits)
        }
    }

    /// Checks the canonical 12 digits: date, serial, check digit.
    fn from_canonical(d: [u8; 12]) -> Result<Self, IdentityError> {
        let year = number(&d[0..4]) as i32;
        let month = number(&d[4..6]) as u8;
        let day = number(&d[6..8]) as u8;
        if !date_part_valid(year, month, day) {
            return Err(IdentityError::InvalidDate);
        }
        if &d[8..11] == b"000" {
            return Err(IdentityError::InvalidSerial);
        }
        if !luhn_ok(&d[2..12]) {
            return Err(IdentityError::InvalidChecksum);
        }
        Ok(Self(d))
    }

    /// The canonical 12 digits, YYYYMMDDNNNC. The only way to see them all.
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }

    /// Samordningsnummer carry day + 60 (day 60 meaning "day unknown").
    pub fn kind(&self) -> PersonalIdentityKind {
        if self.raw_day() >= COORDINATION_DAY_OFFSET {
            PersonalIdentityKind::Samordningsnummer
        } else {
            PersonalIdentityKind::Personnummer
        }
    }

    /// The date of birth; `None` when the month or day is unknown (00 / 60),
    /// or when a samordningsnummer names a day its month does not have
    /// (those are only range-checked, as Skatteverket issues them).
    pub fn birth_date(&self) -> Option<Date> {
        let (year, month, day) = self.date_parts();
        let month = time::Month::try_from(month).ok()?;
        Date::from_calendar_date(year, month, day).ok()
    }

    /// Completed years of age on `date`; `None` if the birth date is unknown
    /// or after `date`. A 29 February birthday is reached on 1 March in
    /// common years.
    pub fn age_on(&self, date: Date) -> Option<u32> {
        let birth = self.birth_date()?;
        let mut years = date.year() - birth.year();
        if (u8::from(date.month()), date.day()) < (u8::from(birth.month()), birth.day()) {
            years -= 1;
        }
        u32::try_from(years).ok()
    }

    /// The latest date the person can have been born on: the birth date
    /// when it is known; otherwise the last day its number leaves open (the
    /// month's last day for an unknown or impossible day, 31 December for an
    /// unknown month).
    pub fn latest_birth_date(&self) -> Date {
        if let Some(known) = self.birth_date() {
            return known;
        }
        let (year, month, _) = self.date_parts();
        let month = time::Month::try_from(month).unwrap_or(time::Month::December);
        let last_day = month.length(year);
        Date::from_calendar_date(year, month, last_day).unwrap_or(Date::MAX)
    }

    /// Whether the person is at least `years` old on `date` whatever the
    /// unknown parts of the number are: judged from the latest possible birth
    /// date, so an unknown day or month, or a date after `date`, never lets
    /// a younger person through.
    pub fn certainly_at_least(&self, years: u32, date: Date) -> bool {
        let birth = self.latest_birth_date();
        let Ok(years) = i32::try_from(years) else {
            return false;
        };
        let mut age = date.year() - birth.year();
        if (u8::from(date.month()), date.day()) < (u8::from(birth.month()), birth.day()) {
            age -= 1;
        }
        birth <= date && age >= years
    }

    /// The first eight digits and a mask, e.g. "19900101-****". Safe for logs.
    pub fn masked(&self) -> String {
        mask(self.as_str())
    }

    fn raw_day(&self) -> u8 {
        number(&self.0[6..8]) as u8
    }

    /// (year, month, day) with the coordination offset removed; month or day
    /// may be 0 when unknown.
    fn date_parts(&self) -> (i32, u8, u8) {
        let day = self.raw_day();
        (
            number(&self.0[0..4]) as i32,
            number(&self.0[4..6]) as u8,
            day % COORDINATION_DAY_OFFSET,
        )
    }
}

/// Personnummer: a real calendar date (leap years included). Samordningsnummer
/// (day 60..=91): range-checked only, month 00..=12, never calendar-checked.
fn date_part_valid(year: i32, month: u8, day: u8) -> bool {
    if year < MIN_BIRTH_YEAR {
        return false;
    }
    if day >= COORDINATION_DAY_OFFSET {
        return month <= 12 && day <= COORDINATION_DAY_OFFSET + 31;
    }
    time::Month::try_from(month)
        .ok()
        .and_then(|m| Date::from_calendar_date(year, m, day).ok())
        .is_some()
}

/// Turns YYMMDDNNNC into YYYYMMDDNNNC by calendar year alone: the latest
/// year ending in YY that is not after `today`'s year (the person turns at
/// most 99 this year), and a century earlier for '+' (turns 100 or more this
/// year). Month and day play no part, so a samordningsnummer's partly unknown
/// or non-calendar date needs no special case.
fn expand_century(ten: &[u8], centenarian: bool, today: Date) -> Result<[u8; 12], IdentityError> {
    let yy = number(&ten[0..2]) as i32;
    let this_year = today.year();
    let mut year = this_year - this_year.rem_euclid(100) + yy;
    if year > this_year {
        year -= 100;
    }
    if centenarian {
        year -= 100;
    }
    if !(0..=9999).contains(&year) {
        return Err(IdentityError::InvalidDate);
    }
    // The century as two ASCII digits, then the ten digits as written.
    let century = (year / 100) as u8;
    let mut out = [0u8; 12];
    out[0] = b'0' + century / 10;
    out[1] = b'0' + century % 10;
    out[2..].copy_from_slice(ten);
    Ok(out)
}

impl fmt::Debug for PersonalIdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PersonalIdentityNumber")
            .field(&format_args!("{}", self.masked()))
            .finish()
    }
}

/// Masked, like `Debug`: use `as_str` where the full number is meant.
impl fmt::Display for PersonalIdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for PersonalIdentityNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Parses with `today` = the current UTC date
/// (`time::OffsetDateTime::now_utc().date()`), which only matters for the
/// 10-digit forms.
impl<'de> Deserialize<'de> for PersonalIdentityNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s, today_utc()).map_err(serde::de::Error::custom)
    }
}

fn today_utc() -> Date {
    time::OffsetDateTime::now_utc().date()
}

// ---------------------------------------------------------------------------
// Organisationsnummer
// ---------------------------------------------------------------------------

/// An organisationsnummer of a legal entity, stored as "16" + 10 digits (the
/// 12-digit form used by Skatteverket and in the mailbox registers).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganisationNumber([u8; 12]);

impl OrganisationNumber {
    /// Accepts NNNNNN-NNNC, NNNNNNNNNC and 16NNNNNNNNNC (also 16NNNNNN-NNNC).
    /// The third of the ten digits must be 2 or more: that is what separates
    /// a legal entity from a personal number (whose month starts with 0 or
    /// 1). Luhn check over the ten digits. Unlike personal numbers, serial 000
    /// is allowed.
    pub fn parse(input: &str) -> Result<Self, IdentityError> {
        Self::from_written(&scan(input)?)
    }

    fn from_written(w: &Written) -> Result<Self, IdentityError> {
        if w.separator == Some(b'+') {
            // '+' marks a centenarian; it has no meaning for an organisation.
            return Err(IdentityError::InvalidCharacters);
        }
        let ten = match w.digits() {
            [b'1', b'6', ten @ ..] if ten.len() == 10 => ten,
            ten if ten.len() == 10 => ten,
            // Twelve digits without the "16" prefix: a personal number.
            _ => return Err(IdentityError::InvalidOrganisationGroup),
        };
        if ten[2] < b'2' {
            return Err(IdentityError::InvalidOrganisationGroup);
        }
        if !luhn_ok(ten) {
            return Err(IdentityError::InvalidChecksum);
        }
        let mut out = [0u8; 12];
        out[..2].copy_from_slice(b"16");
        out[2..].copy_from_slice(ten);
        Ok(Self(out))
    }

    /// The canonical "16" + 10 digits.
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }

    /// E.g. "16556016-****". Safe for logs.
    pub fn masked(&self) -> String {
        mask(self.as_str())
    }
}

impl fmt::Debug for OrganisationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OrganisationNumber")
            .field(&format_args!("{}", self.masked()))
            .finish()
    }
}

/// Masked, like `Debug`.
impl fmt::Display for OrganisationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for OrganisationNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OrganisationNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Recipient
// ---------------------------------------------------------------------------

/// Whom a delivery is addressed to. A sole trader has no number of their own:
/// their organisation number IS their personal number, so it parses as
/// `Person`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecipientId {
    Person(PersonalIdentityNumber),
    Organisation(OrganisationNumber),
}

impl RecipientId {
    /// Detects the kind: 12 digits starting with "16" => organisation;
    /// 10-digit forms (with or without hyphen) whose third digit is 2 or more
    /// => organisation; otherwise a person (see
    /// [`PersonalIdentityNumber::parse`] for `today`).
    pub fn parse(input: &str, today: Date) -> Result<Self, IdentityError> {
        let w = scan(input)?;
        let organisation = match w.digits() {
            [b'1', b'6', rest @ ..] if rest.len() == 10 => true,
            ten if ten.len() == 10 => ten[2] >= b'2',
            _ => false,
        };
        if organisation {
            OrganisationNumber::from_written(&w).map(Self::Organisation)
        } else {
            PersonalIdentityNumber::from_written(&w, today).map(Self::Person)
        }
    }

    /// Parses exactly the canonical 12-digit form (what the database stores),
    /// with no trimming or separators; used when reading back.
    pub fn parse_canonical(s: &str) -> Result<Self, IdentityError> {
        if s.is_empty() {
            return Err(IdentityError::Empty);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentityError::InvalidCharacters);
        }
        let digits: [u8; 12] = s
            .as_bytes()
            .try_into()
            .map_err(|_| IdentityError::InvalidLength)?;
        let w = Written {
            digits,
            len: 12,
            separator: None,
        };
        if digits.starts_with(b"16") {
            OrganisationNumber::from_written(&w).map(Self::Organisation)
        } else {
            PersonalIdentityNumber::from_canonical(digits).map(Self::Person)
        }
    }

    /// The canonical 12 digits.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Person(p) => p.as_str(),
            Self::Organisation(o) => o.as_str(),
        }
    }

    pub fn is_person(&self) -> bool {
        matches!(self, Self::Person(_))
    }

    /// E.g. "19900101-****" / "16556016-****". Safe for logs.
    pub fn masked(&self) -> String {
        mask(self.as_str())
    }
}

impl fmt::Debug for RecipientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, masked) = match self {
            Self::Person(p) => ("Person", p.masked()),
            Self::Organisation(o) => ("Organisation", o.masked()),
        };
        f.debug_tuple(name)
            .field(&format_args!("{masked}"))
            .finish()
    }
}

/// Masked, like `Debug`.
impl fmt::Display for RecipientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl From<PersonalIdentityNumber> for RecipientId {
    fn from(p: PersonalIdentityNumber) -> Self {
        Self::Person(p)
    }
}

impl From<OrganisationNumber> for RecipientId {
    fn from(o: OrganisationNumber) -> Self {
        Self::Organisation(o)
    }
}

impl Serialize for RecipientId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Parses with [`RecipientId::parse`] and `today` = the current UTC date
/// (`time::OffsetDateTime::now_utc().date()`), which only matters for the
/// 10-digit forms; the canonical 12-digit form parses the same on any day.
impl<'de> Deserialize<'de> for RecipientId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s, today_utc()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 24);

    fn pnr(s: &str) -> Result<PersonalIdentityNumber, IdentityError> {
        PersonalIdentityNumber::parse(s, TODAY)
    }

    #[test]
    fn written_forms_agree() {
        let canonical = pnr("199001011239").unwrap();
        for form in [
            "19900101-1239",
            "900101-1239",
            "9001011239",
            "  900101-1239\n",
        ] {
            assert_eq!(pnr(form).unwrap(), canonical, "{form}");
        }
        assert_eq!(canonical.as_str(), "199001011239");
        assert_eq!(canonical.kind(), PersonalIdentityKind::Personnummer);
        assert_eq!(canonical.birth_date(), Some(date!(1990 - 01 - 01)));
    }

    #[test]
    fn century_from_today_and_plus() {
        // '-' (or none): the latest year ending in YY not after this year,
        // whether or not the birthday has come yet.
        // (Born tomorrow: nobody yet, and a century earlier needs '+'.)
        assert_eq!(
            pnr(&with_check("2611251234")),
            Err(IdentityError::BornLaterThisYear)
        );
        let n = pnr(&with_check("2611241234")).unwrap();
        assert!(n.as_str().starts_with("2026"));
        let n = pnr(&with_check("2701011234")).unwrap();
        assert!(n.as_str().starts_with("1927"));
        // '+': a century earlier again.
        let n = pnr(&plus(&with_check("2611241234"))).unwrap();
        assert!(n.as_str().starts_with("1926"));
        assert_eq!(n.age_on(TODAY), Some(100));
    }

    /// The ten digits with '+' before the last four.
    fn plus(ten: &str) -> String {
        format!("{}+{}", &ten[..6], &ten[6..])
    }

    /// The ten digits with '-' before the last four.
    fn minus(ten: &str) -> String {
        format!("{}-{}", &ten[..6], &ten[6..])
    }

    /// The birth year a written number parses to on `today`.
    fn year_on(written: &str, today: Date) -> i32 {
        let p = PersonalIdentityNumber::parse(written, today)
            .unwrap_or_else(|e| panic!("{written} on {today}: {e}"));
        p.as_str()[..4].parse().unwrap()
    }

    /// The case: born 1926-12-15, asked on 2026-12-01. They turn 100
    /// this year, so they write '+' from 1 January on, before the birthday.
    #[test]
    fn plus_is_by_calendar_year_not_birthday() {
        let today = date!(2026 - 12 - 01);
        let ten = with_check("2612153227");
        let p = PersonalIdentityNumber::parse(&plus(&ten), today).unwrap();
        assert_eq!(p.birth_date(), Some(date!(1926 - 12 - 15)));
        assert_eq!(p.age_on(today), Some(99));
        // With '-' it would be someone born this year, on a day still to
        // come: refused, not read as 1926 (which needs '+').
        for written in [minus(&ten), ten.clone()] {
            assert_eq!(
                PersonalIdentityNumber::parse(&written, today),
                Err(IdentityError::BornLaterThisYear),
                "{written}"
            );
        }
        // '+' is 1926 on any day of 2026, before or after the birthday; '-'
        // is 2026 from the birthday on.
        for today in [
            date!(2026 - 01 - 01),
            date!(2026 - 06 - 30),
            date!(2026 - 12 - 14),
            date!(2026 - 12 - 15),
            date!(2026 - 12 - 31),
        ] {
            assert_eq!(year_on(&plus(&ten), today), 1926, "{today}");
            if today >= date!(2026 - 12 - 15) {
                assert_eq!(year_on(&minus(&ten), today), 2026, "{today}");
            } else {
                assert!(PersonalIdentityNumber::parse(&minus(&ten), today).is_err());
            }
        }
    }

    #[test]
    fn century_changes_at_new_year() {
        let new_years_eve = date!(2025 - 12 - 31);
        let new_year = date!(2026 - 01 - 01);
        for (ten, kind) in [
            // Born 1 January and 31 December: personnummer …
            (with_check("2601011230"), PersonalIdentityKind::Personnummer),
            (with_check("2512311230"), PersonalIdentityKind::Personnummer),
            // … and samordningsnummer (day + 60), incl. an unknown day.
            (
                with_check("2601611230"),
                PersonalIdentityKind::Samordningsnummer,
            ),
            (
                with_check("2512911230"),
                PersonalIdentityKind::Samordningsnummer,
            ),
            (
                with_check("2601601230"),
                PersonalIdentityKind::Samordningsnummer,
            ),
            (
                with_check("2600601230"),
                PersonalIdentityKind::Samordningsnummer,
            ),
        ] {
            let p = pnr(&ten).unwrap();
            assert_eq!(p.kind(), kind, "{ten}");
            let yy: i32 = ten[..2].parse().unwrap();
            // On 2025-12-31 a '26' is 1926 ('-', turning 99) or 1826 ('+');
            // from 2026-01-01 on it is 2026 or 1926. A '25' stays 2025/1925.
            let (minus_eve, minus_new) = if yy == 26 { (1926, 2026) } else { (2025, 2025) };
            assert_eq!(year_on(&minus(&ten), new_years_eve), minus_eve, "{ten}");
            assert_eq!(year_on(&ten, new_years_eve), minus_eve, "{ten}");
            assert_eq!(
                year_on(&plus(&ten), new_years_eve),
                minus_eve - 100,
                "{ten}"
            );
            assert_eq!(year_on(&minus(&ten), new_year), minus_new, "{ten}");
            assert_eq!(year_on(&ten, new_year), minus_new, "{ten}");
            assert_eq!(year_on(&plus(&ten), new_year), minus_new - 100, "{ten}");
        }
    }

    #[test]
    fn samordningsnummer_plus_before_the_birthday() {
        // Born 1926-12-15, coordination number day 75, asked on 2026-12-01.
        let ten = with_check("2612751230");
        let today = date!(2026 - 12 - 01);
        let p = PersonalIdentityNumber::parse(&plus(&ten), today).unwrap();
        assert_eq!(p.kind(), PersonalIdentityKind::Samordningsnummer);
        assert_eq!(p.birth_date(), Some(date!(1926 - 12 - 15)));
        assert_eq!(p.age_on(today), Some(99));
        assert_eq!(
            PersonalIdentityNumber::parse(&minus(&ten), today),
            Err(IdentityError::BornLaterThisYear)
        );
        // A day after the birthday: still 1926 with '+', 2026 with '-'.
        assert_eq!(year_on(&plus(&ten), date!(2026 - 12 - 16)), 1926);
        assert_eq!(year_on(&minus(&ten), date!(2026 - 12 - 16)), 2026);
        // A year later they are 101 this year: still '+', still 1926.
        assert_eq!(year_on(&plus(&ten), date!(2027 - 01 - 01)), 1926);
        // And '-' there means someone born 2026 (at most 99 in 2027).
        assert_eq!(year_on(&minus(&ten), date!(2027 - 01 - 01)), 2026);
    }

    #[test]
    fn ninety_nine_and_one_hundred() {
        // Born 1927-06-01: turns 99 in 2026 ('-'), 100 in 2027 ('+').
        let ten = with_check("2706011230");
        assert_eq!(year_on(&minus(&ten), date!(2026 - 12 - 31)), 1927);
        assert_eq!(year_on(&plus(&ten), date!(2026 - 12 - 31)), 1827);
        assert_eq!(year_on(&plus(&ten), date!(2027 - 01 - 01)), 1927);
        assert_eq!(year_on(&plus(&ten), date!(2027 - 05 - 31)), 1927);
        // '-' in 2027 would be someone born 2027-06-01: not before that day.
        assert_eq!(
            PersonalIdentityNumber::parse(&minus(&ten), date!(2027 - 01 - 01)),
            Err(IdentityError::BornLaterThisYear)
        );
        assert_eq!(year_on(&minus(&ten), date!(2027 - 06 - 01)), 2027);
        // The 12-digit form is the same on every day.
        for today in [date!(2026 - 12 - 31), date!(2027 - 01 - 01)] {
            assert_eq!(year_on(&format!("19{ten}"), today), 1927);
        }
    }

    /// Replaces the last digit of ten digits with the correct Luhn digit.
    fn with_check(ten: &str) -> String {
        let nine = &ten.as_bytes()[..9];
        let c = luhn_check_digit(nine) as char;
        format!("{}{c}", &ten[..9])
    }

    #[test]
    fn leap_days() {
        assert!(pnr(&with_check("0002291230")).is_ok()); // 2000 is a leap year
        assert_eq!(
            pnr(&format!("000229+{}", &with_check("0002291230")[6..])),
            Err(IdentityError::InvalidDate) // 1900 is not
        );
        assert_eq!(
            pnr(&with_check("2302291230")),
            Err(IdentityError::InvalidDate)
        );
    }

    #[test]
    fn samordningsnummer_are_range_checked_only() {
        // 31 February and month 00 are fine as coordination numbers.
        let n = pnr(&with_check("9002911230")).unwrap();
        assert_eq!(n.kind(), PersonalIdentityKind::Samordningsnummer);
        assert_eq!(n.birth_date(), None);
        let n = pnr(&with_check("9000601230")).unwrap();
        assert_eq!(n.birth_date(), None);
        assert_eq!(n.age_on(TODAY), None);
        let n = pnr(&with_check("9001611230")).unwrap();
        assert_eq!(n.birth_date(), Some(date!(1990 - 01 - 01)));
        assert_eq!(
            pnr(&with_check("9001921230")),
            Err(IdentityError::InvalidDate)
        );
        assert_eq!(
            pnr(&with_check("9013611230")),
            Err(IdentityError::InvalidDate)
        );
        assert_eq!(
            pnr(&with_check("9001401230")),
            Err(IdentityError::InvalidDate)
        );
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(pnr(""), Err(IdentityError::Empty));
        assert_eq!(pnr("   "), Err(IdentityError::Empty));
        assert_eq!(pnr("19900101 1239"), Err(IdentityError::InvalidCharacters));
        assert_eq!(pnr("199001-011239"), Err(IdentityError::InvalidCharacters));
        assert_eq!(pnr("900101--1239"), Err(IdentityError::InvalidCharacters));
        assert_eq!(
            pnr("９００１０１-1239"),
            Err(IdentityError::InvalidCharacters)
        );
        assert_eq!(pnr("90010112"), Err(IdentityError::InvalidLength));
        assert_eq!(pnr("1990010112391"), Err(IdentityError::InvalidLength));
        assert_eq!(pnr("199000011239"), Err(IdentityError::InvalidDate));
        assert_eq!(pnr("199001001239"), Err(IdentityError::InvalidDate));
        assert_eq!(
            pnr(&with_check("9001010000")),
            Err(IdentityError::InvalidSerial)
        );
    }

    #[test]
    fn organisation_numbers() {
        let o = OrganisationNumber::parse("556016-0680").unwrap();
        assert_eq!(o.as_str(), "165560160680");
        assert_eq!(OrganisationNumber::parse("165560160680").unwrap(), o);
        assert_eq!(OrganisationNumber::parse("16556016-0680").unwrap(), o);
        assert_eq!(
            OrganisationNumber::parse("556016-0681"),
            Err(IdentityError::InvalidChecksum)
        );
        assert_eq!(
            OrganisationNumber::parse("556016+0680"),
            Err(IdentityError::InvalidCharacters)
        );
        assert_eq!(
            OrganisationNumber::parse("199001011239"),
            Err(IdentityError::InvalidOrganisationGroup)
        );
        assert_eq!(
            OrganisationNumber::parse("9001011239"),
            Err(IdentityError::InvalidOrganisationGroup)
        );
        assert!(OrganisationNumber::parse("559244-0001").is_ok()); // serial 000 is fine here
    }

    #[test]
    fn recipient_detection_and_canonical() {
        let o = RecipientId::parse("556016-0680", TODAY).unwrap();
        assert!(!o.is_person());
        let p = RecipientId::parse("121212-1212", TODAY).unwrap();
        assert!(p.is_person());
        assert_eq!(p.as_str(), "201212121212");
        for r in [o, p] {
            assert_eq!(RecipientId::parse_canonical(r.as_str()).unwrap(), r);
        }
        assert_eq!(
            RecipientId::parse_canonical("5560160680"),
            Err(IdentityError::InvalidLength)
        );
        assert_eq!(
            RecipientId::parse_canonical("20121212-1212"),
            Err(IdentityError::InvalidCharacters)
        );
        assert_eq!(RecipientId::parse_canonical(""), Err(IdentityError::Empty));
    }

    #[test]
    fn output_is_masked() {
        let p = pnr("201212121212").unwrap();
        let o = OrganisationNumber::parse("5560160680").unwrap();
        let rp = RecipientId::Person(p);
        let ro = RecipientId::Organisation(o);
        for s in [
            format!("{p:?}"),
            format!("{p}"),
            format!("{rp:?}"),
            format!("{rp}"),
            format!("{rp:#?}"),
        ] {
            assert!(!s.contains("201212121212"), "{s}");
            assert!(!s.contains("1212121212"), "{s}");
            assert!(s.contains("20121212-****"), "{s}");
        }
        for s in [
            format!("{o:?}"),
            format!("{o}"),
            format!("{ro:?}"),
            format!("{ro}"),
        ] {
            assert!(!s.contains("5560160680"), "{s}");
            assert!(s.contains("16556016-****"), "{s}");
        }
        assert_eq!(format!("{rp:?}"), "Person(20121212-****)");
    }

    #[test]
    fn error_messages_carry_no_digits() {
        for e in [
            IdentityError::Empty,
            IdentityError::InvalidCharacters,
            IdentityError::InvalidLength,
            IdentityError::InvalidDate,
            IdentityError::InvalidChecksum,
            IdentityError::InvalidSerial,
            IdentityError::InvalidOrganisationGroup,
        ] {
            let m = e.to_string();
            assert!(!m.chars().any(|c| c.is_ascii_digit()), "{m}");
        }
        assert_eq!(
            IdentityError::InvalidChecksum.to_string(),
            "invalid check digit"
        );
    }

    #[test]
    fn serde_round_trip() {
        let r = RecipientId::parse("556016-0680", TODAY).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"165560160680\"");
        assert_eq!(serde_json::from_str::<RecipientId>(&json).unwrap(), r);
        let p = pnr("201212121212").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            serde_json::from_str::<PersonalIdentityNumber>(&json).unwrap(),
            p
        );
        let err = serde_json::from_str::<RecipientId>("\"201212121213\"").unwrap_err();
        assert!(!err.to_string().contains("201212121213"));
    }

    /// The age check for a mailbox judges from the latest possible birth
    /// date (issue 17: an unknown day or month let anyone through).
    #[test]
    fn of_age_only_when_the_latest_possible_birth_date_is_18_years_back() {
        // Unknown day in November 2008: possibly born 30 November 2008.
        let unknown_day = pnr(&with_check("0811601230")).unwrap();
        assert_eq!(unknown_day.age_on(TODAY), None);
        assert!(!unknown_day.certainly_at_least(18, date!(2026 - 11 - 29)));
        assert!(unknown_day.certainly_at_least(18, date!(2026 - 11 - 30)));
        // Unknown month in 2008: possibly born 31 December 2008.
        let unknown_month = pnr(&with_check("0800601230")).unwrap();
        assert!(!unknown_month.certainly_at_least(18, date!(2026 - 12 - 30)));
        assert!(unknown_month.certainly_at_least(18, date!(2026 - 12 - 31)));
        // A known date: as age_on.
        let known = pnr("199001011239").unwrap();
        assert!(known.certainly_at_least(18, TODAY));
        let young = pnr(&with_check("1005051230")).unwrap();
        assert!(!young.certainly_at_least(18, TODAY));
    }

    #[test]
    fn ages() {
        let p = pnr(&with_check("0002291230")).unwrap();
        assert_eq!(p.age_on(date!(2001 - 02 - 28)), Some(0));
        assert_eq!(p.age_on(date!(2001 - 03 - 01)), Some(1));
        assert_eq!(p.age_on(date!(2000 - 02 - 28)), None);
    }
}
