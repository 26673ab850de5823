//! The Swedish OIDC profile's claims (Sweden Connect, `id.oidc.se`): the
//! identity number, the names, and the level of assurance in `acr`.
//! Read from an ID token the `openidconnect` crate has already verified.

use super::LoginError;
use kuvert_domain::identity::{PersonalIdentityKind, PersonalIdentityNumber};
use openidconnect::core::CoreGenderClaim;
use openidconnect::{AdditionalClaims, IdTokenClaims};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::Date;

/// The claim of the Swedish personal identity number (12 digits).
pub const PERSONAL_IDENTITY_NUMBER_CLAIM: &str = "https://id.oidc.se/claim/personalIdentityNumber";
/// The claim of a coordination number (samordningsnummer), 12 digits.
pub const COORDINATION_NUMBER_CLAIM: &str = "https://id.oidc.se/claim/coordinationNumber";

/// The claims an ID token carries besides the standard ones (kept whole:
/// which ones are read is configuration).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProfileClaims {
    #[serde(flatten)]
    other: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for ProfileClaims {}

/// Which claims hold the identity number (configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub personal_identity_number: String,
    pub coordination_number: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            personal_identity_number: PERSONAL_IDENTITY_NUMBER_CLAIM.to_owned(),
            coordination_number: COORDINATION_NUMBER_CLAIM.to_owned(),
        }
    }
}

/// A level of assurance, ordered. The Swedish e-ID framework's URIs
/// (`http://id.elegnamnden.se/loa/1.0/…`), and the eIDAS levels as the
/// Swedish framework names them: `eidas-sub` (substantial) counts as
/// `loa3`, `eidas-high` as `loa4`, `eidas-low` as `loa2`; the `-nf`
/// (notified) forms likewise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Loa {
    Loa1,
    Loa2,
    Loa3,
    Loa4,
}

const LOA_PREFIX: &str = "http://id.elegnamnden.se/loa/1.0/";

#[derive(Debug, thiserror::Error)]
#[error("unknown level of assurance {0:?}")]
pub struct LoaError(String);

impl Loa {
    /// From an `acr` value.
    pub fn from_uri(uri: &str) -> Result<Self, LoaError> {
        let short = uri
            .strip_prefix(LOA_PREFIX)
            .ok_or_else(|| LoaError(uri.to_owned()))?;
        match short {
            "loa1" => Ok(Self::Loa1),
            "loa2" | "eidas-low" | "eidas-nf-low" => Ok(Self::Loa2),
            "loa3" | "eidas-sub" | "eidas-nf-sub" => Ok(Self::Loa3),
            "loa4" | "eidas-high" | "eidas-nf-high" => Ok(Self::Loa4),
            _ => Err(LoaError(uri.to_owned())),
        }
    }

    /// From the short form kuvert stores and takes as configuration.
    pub fn parse_short(text: &str) -> Result<Self, LoaError> {
        match text {
            "loa1" => Ok(Self::Loa1),
            "loa2" => Ok(Self::Loa2),
            "loa3" => Ok(Self::Loa3),
            "loa4" => Ok(Self::Loa4),
            _ => Err(LoaError(text.to_owned())),
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Self::Loa1 => "loa1",
            Self::Loa2 => "loa2",
            Self::Loa3 => "loa3",
            Self::Loa4 => "loa4",
        }
    }

    /// The `acr` URI of the level.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Loa1 => "http://id.elegnamnden.se/loa/1.0/loa1",
            Self::Loa2 => "http://id.elegnamnden.se/loa/1.0/loa2",
            Self::Loa3 => "http://id.elegnamnden.se/loa/1.0/loa3",
            Self::Loa4 => "http://id.elegnamnden.se/loa/1.0/loa4",
        }
    }
}

/// A person whose login passed every check.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub person: PersonalIdentityNumber,
    pub given_name: String,
    pub family_name: String,
    pub loa: Loa,
}

/// The claims kuvert needs, from a verified ID token. The identity number
/// must be the canonical 12 digits and parse with kuvert's own parser
/// (date, serial, check digit), and be of the kind its claim says;
/// anything else is refused and nothing of it is kept.
pub(super) fn read(
    claims: &IdTokenClaims<ProfileClaims, CoreGenderClaim>,
    names: &ClaimNames,
    min_loa: Loa,
    today: Date,
) -> Result<LoggedIn, LoginError> {
    let extra = &claims.additional_claims().other;
    let (value, kind) = match (
        extra.get(&names.personal_identity_number),
        extra.get(&names.coordination_number),
    ) {
        (Some(value), _) => (value, PersonalIdentityKind::Personnummer),
        (None, Some(value)) => (value, PersonalIdentityKind::Samordningsnummer),
        (None, None) => return Err(LoginError::IdentityMissing),
    };
    let text = value.as_str().ok_or(LoginError::IdentityMalformed)?;
    if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LoginError::IdentityMalformed);
    }
    let person =
        PersonalIdentityNumber::parse(text, today).map_err(|_| LoginError::IdentityMalformed)?;
    if person.kind() != kind {
        return Err(LoginError::IdentityMalformed);
    }
    let acr = claims.auth_context_ref().map(|acr| acr.as_str().to_owned());
    let loa = acr.as_deref().and_then(|uri| Loa::from_uri(uri).ok());
    let loa = match loa {
        Some(loa) if loa >= min_loa => loa,
        _ => {
            return Err(LoginError::LoaTooLow {
                got: acr.unwrap_or_else(|| "none".to_owned()),
                min: min_loa.short(),
            });
        }
    };
    let given_name = claims
        .given_name()
        .and_then(|c| c.get(None))
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let family_name = claims
        .family_name()
        .and_then(|c| c.get(None))
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    Ok(LoggedIn {
        person,
        given_name,
        family_name,
        loa,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_eidas_maps_onto_them() {
        assert!(Loa::Loa4 > Loa::Loa3 && Loa::Loa3 > Loa::Loa2);
        assert_eq!(
            Loa::from_uri("http://id.elegnamnden.se/loa/1.0/eidas-sub").unwrap(),
            Loa::Loa3
        );
        assert_eq!(
            Loa::from_uri("http://id.elegnamnden.se/loa/1.0/eidas-high").unwrap(),
            Loa::Loa4
        );
        assert!(Loa::from_uri("http://example.org/loa3").is_err());
        for loa in [Loa::Loa1, Loa::Loa2, Loa::Loa3, Loa::Loa4] {
            assert_eq!(Loa::from_uri(loa.uri()).unwrap(), loa);
            assert_eq!(Loa::parse_short(loa.short()).unwrap(), loa);
        }
    }
}
