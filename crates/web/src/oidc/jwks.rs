//! `GET /login/jwks`: the public half of kuvert's client key as a JWK Set,
//! so a provider can check the `private_key_jwt` client assertions kuvert
//! signs (register this URL as the client's `jwks_uri`, or copy the set).
//! 404 when this installation runs no login.

use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route("/login/jwks", get(client_jwks))
}

async fn client_jwks(State(state): State<AppState>) -> Response {
    match state.login().and_then(|rp| rp.client_jwks()) {
        Some(jwks) => (
            // Providers cache it; a key rotation shows within five minutes.
            [(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            )],
            Json(jwks),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
