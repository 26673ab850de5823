//! Recipient tokens, format `kvr2`: `kvr2.<b64url(JSON claims)>.<b64url(HMAC-SHA256)>`.
//!
//! A token names its subject (the recipient), its audience (the one service
//! that accepts it: a mailbox operator's id for mail, [`REGISTER_AUDIENCE`]
//! for registration changes), its scopes, a random id (revocable), when it
//! was issued, when it expires (at most [`MAX_TOKEN_LIFETIME_SECONDS`] later)
//! and the id of the key that made it, so a rotated key can be named. The
//! MAC covers the prefix and the claims exactly as sent.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use kuvert_crypto::digest::{constant_time_eq, random_token, secret_key_id};
use kuvert_domain::identity::RecipientId;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The audience of tokens for the register (`/register/v1/me`).
pub const REGISTER_AUDIENCE: &str = "register";
/// A token's lifetime unless the minter asks for less or more.
pub const DEFAULT_TOKEN_LIFETIME_SECONDS: i64 = 3600;
/// The longest lifetime a token may have: minting refuses more, and a token
/// that claims more (minted elsewhere with the key) is refused at use.
pub const MAX_TOKEN_LIFETIME_SECONDS: i64 = 24 * 3600;
/// How far a token's issue time may lie ahead of this clock (clock skew
/// between the minting host and this one).
const CLOCK_SKEW_SECONDS: i64 = 60;

const TOKEN_PREFIX: &str = "kvr2";
const OLD_TOKEN_PREFIX: &str = "kvr1";

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "mail.read")]
    MailRead,
    #[serde(rename = "mail.manage")]
    MailManage,
    #[serde(rename = "registration.read")]
    RegistrationRead,
    #[serde(rename = "registration.write")]
    RegistrationWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::MailRead,
        Scope::MailManage,
        Scope::RegistrationRead,
        Scope::RegistrationWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MailRead => "mail.read",
            Scope::MailManage => "mail.manage",
            Scope::RegistrationRead => "registration.read",
            Scope::RegistrationWrite => "registration.write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A mailbox operator's scope (else the register's).
    pub fn is_mail(self) -> bool {
        matches!(self, Scope::MailRead | Scope::MailManage)
    }
}

/// Why a token is not minted or not accepted. The texts go to the caller:
/// they say what to do and reveal nothing of the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token lives at most {max} seconds; {asked} were asked for")]
    LifetimeTooLong { asked: i64, max: i64 },
    #[error("a token lives at least one second")]
    LifetimeTooShort,
    #[error("a token names at least one scope")]
    NoScope,
    #[error(
        "a token's scopes are all for one service: mail (mail.*) or the register (registration.*)"
    )]
    MixedServices,
    #[error(
        "kvr1 tokens are no longer accepted (they name no audience, scope or id); ask for a new kvr2 token"
    )]
    OldFormat,
    #[error("malformed or forged recipient token")]
    Invalid,
    #[error("this token was made with another key ({0}); ask for a new token")]
    UnknownKey(String),
    #[error("this recipient token has expired; ask for a new one")]
    Expired,
    #[error("this token claims a lifetime over the maximum of {max} seconds")]
    LifetimeOverMaximum { max: i64 },
    #[error("this token's issue time lies in the future")]
    IssuedInTheFuture,
}

/// What a valid token says.
#[derive(Debug, Clone)]
pub struct TokenClaims {
    pub recipient: RecipientId,
    pub audience: String,
    pub scopes: Vec<Scope>,
    pub id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub key_id: String,
}

/// The claims as they travel (short names, as JWT's).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireClaims {
    sub: String,
    aud: String,
    scope: Vec<Scope>,
    jti: String,
    iat: i64,
    exp: i64,
    kid: String,
}

/// A token just minted.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: String,
    pub id: String,
    pub expires_at: i64,
}

/// Mints and checks recipient tokens with the installation's token key.
#[derive(Clone)]
pub struct RecipientTokens {
    key: [u8; 32],
    key_id: String,
}

impl std::fmt::Debug for RecipientTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecipientTokens({})", self.key_id)
    }
}

impl RecipientTokens {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key_id: secret_key_id("hmac-sha256", &key),
            key,
        }
    }

    /// The id of the key tokens are made with (`hmac-sha256:…`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn mac(&self, payload: &str) -> Vec<u8> {
        // HMAC accepts keys of any length; a 32-byte key cannot fail.
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(TOKEN_PREFIX.as_bytes());
                mac.update(b".");
                mac.update(payload.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// A token for `recipient` at `audience` with `scopes`, issued at
    /// `now` (unix seconds) and valid for `lifetime_seconds` (at most
    /// [`MAX_TOKEN_LIFETIME_SECONDS`]). The scopes must all belong to one
    /// service, the one `audience` names.
    pub fn mint(
        &self,
        recipient: &RecipientId,
        audience: &str,
        scopes: &[Scope],
        now: i64,
        lifetime_seconds: i64,
    ) -> Result<MintedToken, TokenError> {
        if lifetime_seconds > MAX_TOKEN_LIFETIME_SECONDS {
            return Err(TokenError::LifetimeTooLong {
                asked: lifetime_seconds,
                max: MAX_TOKEN_LIFETIME_SECONDS,
            });
        }
        if lifetime_seconds < 1 {
            return Err(TokenError::LifetimeTooShort);
        }
        let first = scopes.first().ok_or(TokenError::NoScope)?;
        if scopes.iter().any(|s| s.is_mail() != first.is_mail()) {
            return Err(TokenError::MixedServices);
        }
        Ok(self.sign(recipient, audience, scopes, now, now + lifetime_seconds))
    }

    /// Signs claims without the minting checks: for tests that need an
    /// expired or over-long token made with the real key.
    pub fn mint_unchecked_for_tests(
        &self,
        recipient: &RecipientId,
        audience: &str,
        scopes: &[Scope],
        issued_at: i64,
        expires_at: i64,
    ) -> String {
        self.sign(recipient, audience, scopes, issued_at, expires_at)
            .token
    }

    fn sign(
        &self,
        recipient: &RecipientId,
        audience: &str,
        scopes: &[Scope],
        issued_at: i64,
        expires_at: i64,
    ) -> MintedToken {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // Base64url without '-' and '_': an id given on a command line
        // must never look like an option (`kuvert token revoke ID`).
        let id = random_token(16).replace(['-', '_'], "x");
        let claims = WireClaims {
            sub: recipient.as_str().to_owned(),
            aud: audience.to_owned(),
            scope: scopes.to_vec(),
            jti: id.clone(),
            iat: issued_at,
            exp: expires_at,
            kid: self.key_id.clone(),
        };
        // A struct of strings and integers always serialises.
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let payload = b64.encode(json);
        let mac = b64.encode(self.mac(&payload));
        MintedToken {
            token: format!("{TOKEN_PREFIX}.{payload}.{mac}"),
            id,
            expires_at,
        }
    }

    /// The id inside a token, without checking it (for `kuvert token revoke`
    /// given a whole token, and tests).
    pub fn token_id(token: &str) -> Option<String> {
        let payload = token.strip_prefix("kvr2.")?.split('.').next()?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        serde_json::from_slice::<WireClaims>(&json)
            .ok()
            .map(|c| c.jti)
    }

    /// Checks the MAC, the key id, the times and the subject; the caller
    /// checks audience, scope and revocation.
    pub fn verify(&self, token: &str, now: i64) -> Result<TokenClaims, TokenError> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = token.split('.');
        let (prefix, payload, mac) = match (parts.next(), parts.next(), parts.next()) {
            (Some(prefix), Some(payload), Some(mac)) => (prefix, payload, mac),
            _ => return Err(TokenError::Invalid),
        };
        if prefix == OLD_TOKEN_PREFIX {
            return Err(TokenError::OldFormat);
        }
        if prefix != TOKEN_PREFIX || parts.next().is_some() {
            return Err(TokenError::Invalid);
        }
        let presented = b64.decode(mac).map_err(|_| TokenError::Invalid)?;
        if !constant_time_eq(&presented, &self.mac(payload)) {
            return Err(TokenError::Invalid);
        }
        let json = b64.decode(payload).map_err(|_| TokenError::Invalid)?;
        let claims: WireClaims = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
        if claims.kid != self.key_id {
            return Err(TokenError::UnknownKey(claims.kid));
        }
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.iat > now + CLOCK_SKEW_SECONDS {
            return Err(TokenError::IssuedInTheFuture);
        }
        if claims.exp - claims.iat > MAX_TOKEN_LIFETIME_SECONDS {
            return Err(TokenError::LifetimeOverMaximum {
                max: MAX_TOKEN_LIFETIME_SECONDS,
            });
        }
        let recipient =
            RecipientId::parse_canonical(&claims.sub).map_err(|_| TokenError::Invalid)?;
        Ok(TokenClaims {
            recipient,
            audience: claims.aud,
            scopes: claims.scope,
            id: claims.jti,
            issued_at: claims.iat,
            expires_at: claims.exp,
            key_id: claims.kid,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn anna() -> RecipientId {
        RecipientId::parse_canonical("198001012387").unwrap()
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_minted_token_verifies_with_its_claims() {
        let tokens = RecipientTokens::new([7; 32]);
        let minted = tokens
            .mint(&anna(), "kuvert-brevlada", &[Scope::MailRead], NOW, 600)
            .unwrap();
        let claims = tokens.verify(&minted.token, NOW + 1).unwrap();
        assert_eq!(claims.recipient, anna());
        assert_eq!(claims.audience, "kuvert-brevlada");
        assert_eq!(claims.scopes, [Scope::MailRead]);
        assert_eq!(claims.id, minted.id);
        assert_eq!(claims.key_id, tokens.key_id());
        assert_eq!(RecipientTokens::token_id(&minted.token), Some(minted.id));
        assert_eq!(
            tokens.verify(&minted.token, NOW + 600).unwrap_err(),
            TokenError::Expired
        );
    }

    #[test]
    fn minting_refuses_long_lifetimes_no_scope_and_mixed_services() {
        let tokens = RecipientTokens::new([7; 32]);
        let mint = |scopes: &[Scope], lifetime| {
            tokens
                .mint(&anna(), REGISTER_AUDIENCE, scopes, NOW, lifetime)
                .map(|_| ())
        };
        assert!(matches!(
            mint(&[Scope::RegistrationRead], MAX_TOKEN_LIFETIME_SECONDS + 1),
            Err(TokenError::LifetimeTooLong { .. })
        ));
        assert_eq!(
            mint(&[Scope::RegistrationRead], 0),
            Err(TokenError::LifetimeTooShort)
        );
        assert_eq!(mint(&[], 60), Err(TokenError::NoScope));
        assert_eq!(
            mint(&[Scope::RegistrationWrite, Scope::MailRead], 60),
            Err(TokenError::MixedServices)
        );
        assert!(mint(&[Scope::RegistrationRead], MAX_TOKEN_LIFETIME_SECONDS).is_ok());
    }

    #[test]
    fn forged_edited_foreign_key_over_long_and_future_tokens_are_refused() {
        let tokens = RecipientTokens::new([7; 32]);
        let token = tokens
            .mint(&anna(), "kuvert-brevlada", &[Scope::MailRead], NOW, 600)
            .unwrap()
            .token;
        let other = RecipientTokens::new([8; 32]);
        assert_eq!(other.verify(&token, NOW).unwrap_err(), TokenError::Invalid);
        // The claims changed after signing (another audience): the MAC fails.
        let (head, rest) = token.split_at(10);
        let flipped = format!(
            "{head}{}{}",
            if rest.starts_with('A') { 'B' } else { 'A' },
            &rest[1..]
        );
        assert_eq!(
            tokens.verify(&flipped, NOW).unwrap_err(),
            TokenError::Invalid
        );
        let long = tokens.mint_unchecked_for_tests(
            &anna(),
            "x",
            &[Scope::MailRead],
            NOW,
            NOW + 2 * 86_400,
        );
        assert!(matches!(
            tokens.verify(&long, NOW).unwrap_err(),
            TokenError::LifetimeOverMaximum { .. }
        ));
        let future = tokens.mint_unchecked_for_tests(
            &anna(),
            "x",
            &[Scope::MailRead],
            NOW + 3600,
            NOW + 4000,
        );
        assert_eq!(
            tokens.verify(&future, NOW).unwrap_err(),
            TokenError::IssuedInTheFuture
        );
        assert_eq!(
            tokens.verify("kvr1.abc.def", NOW).unwrap_err(),
            TokenError::OldFormat
        );
    }
}
