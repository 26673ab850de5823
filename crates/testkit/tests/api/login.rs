//! e-ID login (issue 18): the code flow through the development provider,
//! sessions (cookie flags, fixation, idle and absolute expiry, logout),
//! CSRF, security headers, and every refusal of the relying party against
//! a provider that misbehaves on purpose (`kuvert_testkit::oidc`).

use kuvert_testkit::TestApp;
use kuvert_testkit::oidc::{Browser, Seen, Tamper, TestProvider};
use reqwest::StatusCode;
use serde_json::json;

const SESSION: &str = "kuvert_session";
const PRE_LOGIN: &str = "kuvert_login";

async fn sessions(app: &TestApp) -> i64 {
    app.query::<i64>("kuvert.db", "SELECT count(*) FROM web_sessions")
        .await
}

fn person_index(app: &TestApp, given_name: &str) -> usize {
    app.dev_idp_people()
        .iter()
        .position(|p| p.given_name == given_name)
        .expect("a test person")
}

/// A refused login: its status, its code on the page, and no session.
async fn assert_refused(app: &TestApp, seen: &Seen, status: StatusCode, code: &str) {
    assert_eq!(seen.status, status, "{}", seen.body);
    assert!(
        seen.body.contains(&format!("<code>{code}</code>")),
        "expected {code}: {}",
        seen.body
    );
    assert!(seen.cookie(SESSION).is_none(), "no session cookie");
    assert_eq!(sessions(app).await, 0, "nothing stored");
}

#[tokio::test]
async fn the_code_flow_through_the_dev_idp_logs_a_person_in() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let before = browser.get("/").await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.body.contains(r#"<html lang="sv">"#));
    assert!(before.body.contains(r#"href="/login""#));
    assert!(before.body.contains("Testinloggning"), "the test banner");

    let start = browser.start_login().await;
    let authorize = start.location.clone().unwrap();
    assert!(authorize.starts_with(&format!("{}/dev-idp/authorize?", app.url)));
    for param in [
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "acr_values=",
    ] {
        assert!(authorize.contains(param), "{param} in {authorize}");
    }
    let page = browser.get(&authorize).await;
    assert!(page.body.contains("Anna"), "{}", page.body);
    assert!(page.body.contains("Testinloggning"));

    let anna = person_index(&app, "Anna");
    let picked = browser.pick_person(&authorize, anna).await;
    let done = browser.get(&picked.location.unwrap()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/"));
    let line = done.cookie_line(SESSION).unwrap();
    assert!(line.contains("HttpOnly") && line.contains("SameSite=Lax") && line.contains("Path=/"));
    assert!(!line.contains("Secure"), "plain HTTP here: no Secure flag");
    assert_eq!(
        done.cookie(PRE_LOGIN).as_deref(),
        Some(""),
        "the pre-login cookie is cleared"
    );

    let home = browser.get("/").await;
    assert!(home.body.contains("Anna Andersson"), "{}", home.body);
    assert!(home.body.contains("loa3"));
    assert!(
        home.hidden_field("csrf").is_some(),
        "the logout form's CSRF token"
    );

    // The session resolves to the same recipient id the API's tokens carry,
    // and only the id's hash is stored.
    let anna_id = app.demo.recipients[0].id.clone();
    let stored: String = app
        .query("kuvert.db", "SELECT recipient FROM web_sessions")
        .await;
    assert_eq!(stored, anna_id);
    let cookie = done.cookie(SESSION).unwrap();
    let hash: Vec<u8> = app
        .query("kuvert.db", "SELECT id_hash FROM web_sessions")
        .await;
    assert_eq!(hash, kuvert_crypto::digest::hash_secret(&cookie).to_vec());
    assert!(cookie.len() >= 43, "at least 256 bits, base64url");

    // The login is in the audit log, under a pseudonym, not the number.
    let (subject, detail): (String, String) = (
        app.query(
            "kuvert.db",
            "SELECT subject FROM audit_log WHERE action = 'web.login'",
        )
        .await,
        app.query(
            "kuvert.db",
            "SELECT detail FROM audit_log WHERE action = 'web.login'",
        )
        .await,
    );
    assert!(
        !subject.contains(&anna_id) && subject.len() >= 32,
        "{subject}"
    );
    assert_eq!(detail, r#"{"loa":"loa3"}"#);
}

#[tokio::test]
async fn logins_under_way_are_capped() {
    let app = TestApp::spawn_configured(None, |s| s.sessions.max_pending_logins = 3).await;
    for _ in 0..3 {
        app.browser().start_login().await;
    }
    let refused = app.browser().get("/login").await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("<code>logins_busy</code>"));
    assert_eq!(refused.headers["retry-after"], "60");
    assert!(refused.cookie(PRE_LOGIN).is_none());
    assert_eq!(
        app.query::<i64>("kuvert.db", "SELECT count(*) FROM pending_logins")
            .await,
        3,
        "the refused one stored nothing"
    );
}

#[tokio::test]
async fn without_a_provider_there_is_no_login() {
    let app = TestApp::spawn_configured(None, |s| s.dev_idp = false).await;
    let browser = app.browser();
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.body.contains(r#"href="/login""#), "{}", home.body);
    assert!(!home.body.contains("Testinloggning"));
    assert_eq!(browser.get("/login").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        browser.get("/dev-idp/jwks").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for seen in [
        browser.get("/").await,
        browser.get("/login/callback?code=x&state=y").await,
    ] {
        let csp = seen.headers["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
        assert_eq!(seen.headers["x-content-type-options"], "nosniff");
        assert_eq!(seen.headers["referrer-policy"], "no-referrer");
        assert!(!seen.body.contains("<script"), "no script on any page");
        assert!(!seen.body.contains("style="), "no inline style");
    }
    let english = browser.get("/?lang=en").await;
    assert!(english.body.contains(r#"<html lang="en">"#));
    assert!(english.body.contains("Log in with e-ID"));
}

#[tokio::test]
async fn the_language_chosen_stays_on_the_following_pages_until_changed() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    assert!(browser.get("/").await.body.contains(r#"<html lang="sv">"#));
    browser.get("/?lang=en").await;
    // No `?lang=` on the next page (a link or a form of the pages): still English,
    // on error pages too.
    assert!(browser.get("/").await.body.contains(r#"<html lang="en">"#));
    let missing = browser.get("/login/callback").await;
    assert!(
        missing.body.contains(r#"<html lang="en">"#),
        "{}",
        missing.body
    );
    browser.get("/?lang=sv").await;
    assert!(browser.get("/").await.body.contains(r#"<html lang="sv">"#));
}

#[tokio::test]
async fn the_session_id_is_new_at_login_not_the_pre_login_cookie() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let start = browser.start_login().await;
    let pre_login = start.cookie(PRE_LOGIN).unwrap();
    let authorize = start.location.unwrap();
    let picked = browser
        .pick_person(&authorize, person_index(&app, "Anna"))
        .await;
    let done = browser.get(&picked.location.unwrap()).await;
    let session = done.cookie(SESSION).unwrap();
    assert_ne!(session, pre_login);

    // The pre-login id presented as a session id opens nothing.
    let fixated = reqwest::Client::new()
        .get(format!("{}/", app.url))
        .header("cookie", format!("{SESSION}={pre_login}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!fixated.contains("Anna Andersson"));
}

#[tokio::test]
async fn logout_ends_the_session_server_side() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let done = browser.login_dev_idp(person_index(&app, "Anna")).await;
    let cookie = done.cookie(SESSION).unwrap();
    let csrf = browser.csrf().await.unwrap();

    let out = browser.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.cookie(SESSION).as_deref(), Some(""));
    assert_eq!(sessions(&app).await, 0);
    assert_eq!(
        app.query::<i64>(
            "kuvert.db",
            "SELECT count(*) FROM audit_log WHERE action = 'web.logout'"
        )
        .await,
        1
    );

    // The old cookie, kept elsewhere, is refused.
    let stolen = reqwest::Client::new()
        .post(format!("{}/logout", app.url))
        .header("cookie", format!("{SESSION}={cookie}"))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), StatusCode::UNAUTHORIZED);
    assert!(
        stolen
            .text()
            .await
            .unwrap()
            .contains("<code>not_logged_in</code>")
    );
    assert!(!browser.get("/").await.body.contains("Anna Andersson"));
}

#[tokio::test]
async fn logout_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    browser.login_dev_idp(person_index(&app, "Anna")).await;
    for form in [vec![], vec![("csrf", "wrong")]] {
        let refused = browser.post_form("/logout", &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert!(refused.body.contains("<code>csrf_invalid</code>"));
    }
    assert_eq!(sessions(&app).await, 1, "still logged in");
    assert!(browser.get("/").await.body.contains("Anna Andersson"));
}

fn three_days_ago() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::days(3)
}

#[tokio::test]
async fn an_idle_session_expires_after_30_minutes() {
    let app = TestApp::spawn_configured(Some(three_days_ago()), |_| {}).await;
    let browser = app.browser();
    browser.login_dev_idp(person_index(&app, "Anna")).await;
    app.advance(time::Duration::minutes(29));
    assert!(
        browser.get("/").await.body.contains("Anna Andersson"),
        "29 minutes idle: still in"
    );
    app.advance(time::Duration::minutes(31));
    let csrf_page = browser.get("/").await;
    assert!(
        !csrf_page.body.contains("Anna Andersson"),
        "31 minutes idle: out"
    );
    assert_eq!(sessions(&app).await, 0, "the expired session is deleted");
    let refused = browser.post_form("/logout", &[("csrf", "x")]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_session_ends_12_hours_after_login_however_active() {
    let app = TestApp::spawn_configured(Some(three_days_ago()), |_| {}).await;
    let browser = app.browser();
    browser.login_dev_idp(person_index(&app, "Anna")).await;
    // Active every 20 minutes for 11 h 40 min.
    for _ in 0..35 {
        app.advance(time::Duration::minutes(20));
        assert!(browser.get("/").await.body.contains("Anna Andersson"));
    }
    app.advance(time::Duration::minutes(21));
    assert!(!browser.get("/").await.body.contains("Anna Andersson"));
    assert_eq!(sessions(&app).await, 0);
}

#[tokio::test]
async fn a_pending_login_expires_after_10_minutes() {
    let app = TestApp::spawn_configured(Some(three_days_ago()), |_| {}).await;
    let browser = app.browser();
    let start = browser.start_login().await;
    let picked = browser
        .pick_person(&start.location.unwrap(), person_index(&app, "Anna"))
        .await;
    app.advance(time::Duration::minutes(11));
    let late = browser.get(&picked.location.unwrap()).await;
    assert_refused(&app, &late, StatusCode::BAD_REQUEST, "login_expired").await;
}

#[tokio::test]
async fn a_person_below_loa3_is_refused_with_a_page_that_says_why() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let refused = browser.login_dev_idp(person_index(&app, "Lars")).await;
    assert_refused(&app, &refused, StatusCode::FORBIDDEN, "loa_too_low").await;
    assert!(
        refused.body.contains("tillitsnivå 3"),
        "Swedish first: {}",
        refused.body
    );
    assert!(refused.body.contains("level of assurance 3"), "English too");
    assert!(refused.body.contains("loa2"), "names the level used");
}

#[tokio::test]
async fn a_replayed_callback_or_code_is_refused() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let start = browser.start_login().await;
    let picked = browser
        .pick_person(&start.location.unwrap(), person_index(&app, "Anna"))
        .await;
    let callback = picked.location.unwrap();
    let first = browser.get(&callback).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);

    // The same callback again: the pending login was taken once.
    let other = Browser::new(&app.url);
    let replay = other.get(&callback).await;
    assert_refused_extra(&app, &replay, StatusCode::BAD_REQUEST, "login_expired", 1).await;

    // The used code under another browser's own login (its own state): the
    // provider redeems a code once.
    let started = other.start_login().await;
    let state = reqwest::Url::parse(&started.location.unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let reused = other
        .get(&format!("/login/callback?code={code}&state={state}"))
        .await;
    assert_refused_extra(&app, &reused, StatusCode::BAD_REQUEST, "code_refused", 1).await;
}

async fn assert_refused_extra(
    app: &TestApp,
    seen: &Seen,
    status: StatusCode,
    code: &str,
    left: i64,
) {
    assert_eq!(seen.status, status, "{}", seen.body);
    assert!(
        seen.body.contains(&format!("<code>{code}</code>")),
        "{code}: {}",
        seen.body
    );
    assert!(seen.cookie(SESSION).is_none());
    assert_eq!(sessions(app).await, left);
}

#[tokio::test]
async fn the_dev_idp_beside_a_production_issuer_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let settings = TestApp::test_settings(data.path(), |s| {
        s.dev_idp = true;
        s.oidc = Some(kuvert_web::oidc::OidcSettings::new(
            "https://idp.example.se",
            "kuvert",
            Some("secret"),
        ));
    });
    let error = kuvert::app::start(settings).await.err().expect("refused");
    assert!(
        matches!(
            error.downcast_ref::<kuvert_web::oidc::ConfigError>(),
            Some(kuvert_web::oidc::ConfigError::DevIdpWithProductionIssuer(_))
        ),
        "{error:#}"
    );
    assert!(
        !data.path().join("kuvert.db").exists(),
        "refused before any database is made"
    );
}

/// A code from the development provider for Anna, bound to the PKCE
/// challenge of `verifier`.
async fn dev_idp_code(app: &TestApp, verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let callback = format!("{}/login/callback", app.url);
    let person = person_index(app, "Anna").to_string();
    let picked = app
        .browser()
        .post_form(
            "/dev-idp/authorize",
            &[
                ("person", &person),
                ("client_id", "kuvert-demo"),
                ("redirect_uri", &callback),
                ("state", "s"),
                ("nonce", "n"),
                ("code_challenge", &challenge),
            ],
        )
        .await;
    assert_eq!(picked.status, StatusCode::SEE_OTHER, "{}", picked.body);
    let location = reqwest::Url::parse(&picked.location.unwrap()).unwrap();
    assert!(location.as_str().starts_with(&callback));
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

async fn redeem(
    app: &TestApp,
    code: &str,
    verifier: &str,
    secret: &str,
) -> (StatusCode, serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/dev-idp/token", app.url))
        .basic_auth("kuvert-demo", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", &format!("{}/login/callback", app.url)),
        ])
        .send()
        .await
        .unwrap();
    (answer.status(), answer.json().await.unwrap_or_default())
}

#[tokio::test]
async fn the_dev_idp_checks_pkce_and_the_client_and_redeems_a_code_once() {
    let app = TestApp::spawn_configured(Some(three_days_ago()), |_| {}).await;
    let secret = app.dev_idp_client().client_secret.unwrap();
    let verifier = "a-verifier-of-at-least-43-characters-0123456789";

    let code = dev_idp_code(&app, verifier).await;
    let (status, body) = redeem(&app, &code, verifier, "not-the-secret").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = redeem(
        &app,
        &code,
        "another-verifier-of-43-characters-0123456789",
        &secret,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = redeem(&app, &code, verifier, &secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code tried once is gone");

    let code = dev_idp_code(&app, verifier).await;
    let (status, body) = redeem(&app, &code, verifier, &secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["id_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    let (status, body) = redeem(&app, &code, verifier, &secret).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    let code = dev_idp_code(&app, verifier).await;
    app.advance(time::Duration::seconds(61));
    let (status, _) = redeem(&app, &code, verifier, &secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code lives 60 s");
}

#[tokio::test]
async fn the_dev_idp_sends_codes_only_to_the_registered_redirect_uri() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for (client, redirect) in [
        ("kuvert-demo", "https://evil.example/callback".to_owned()),
        ("someone-else", format!("{}/login/callback", app.url)),
    ] {
        let query = format!(
            "/dev-idp/authorize?response_type=code&client_id={client}&redirect_uri={redirect}&state=s&nonce=n&code_challenge=c&code_challenge_method=S256"
        );
        let page = browser.get(&query).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
        assert!(
            page.location.is_none(),
            "refused on the page, not by a redirect"
        );
        let picked = browser
            .post_form(
                "/dev-idp/authorize",
                &[
                    ("person", "0"),
                    ("client_id", client),
                    ("redirect_uri", &redirect),
                    ("state", "s"),
                    ("code_challenge", "c"),
                ],
            )
            .await;
        assert_eq!(picked.status, StatusCode::BAD_REQUEST);
        assert!(picked.location.is_none());
    }
}

// --- Against a provider that misbehaves on purpose -------------------------

async fn with_provider() -> (TestProvider, TestApp) {
    let provider = TestProvider::start().await;
    let app = TestApp::spawn_configured(None, provider.configure()).await;
    (provider, app)
}

#[tokio::test]
async fn a_conformant_provider_logs_in_with_configuration_only() {
    let (provider, app) = with_provider().await;
    let browser = app.browser();
    let done = browser.login_auto().await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let home = browser.get("/").await;
    assert!(home.body.contains("Anna Andersson"), "{}", home.body);
    assert!(
        !home.body.contains("Testinloggning"),
        "no test banner in production mode"
    );
    assert_eq!(
        app.query::<String>("kuvert.db", "SELECT recipient FROM web_sessions")
            .await,
        kuvert_testkit::oidc::TEST_PERSON
    );
    // The provider rotates its key: the next login fetches the JWKS again.
    provider.rotate_key();
    let again = Browser::new(&app.url).login_auto().await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    // No dev IdP in production mode.
    let none = browser
        .get("/dev-idp/.well-known/openid-configuration")
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn client_secret_post_is_configuration_too() {
    let provider = TestProvider::start().await;
    let app = TestApp::spawn_configured(None, provider.configure_post()).await;
    let done = app.browser().login_auto().await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(provider.last_client_auth(), Some("client_secret_post"));

    let provider = TestProvider::start().await;
    let app = TestApp::spawn_configured(None, provider.configure()).await;
    app.browser().login_auto().await;
    assert_eq!(provider.last_client_auth(), Some("client_secret_basic"));
}

async fn refused_with(tamper: Tamper, status: StatusCode, code: &str) {
    let (provider, app) = with_provider().await;
    provider.tamper(tamper);
    let seen = app.browser().login_auto().await;
    assert_refused(&app, &seen, status, code).await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    let tamper = Tamper {
        issuer: Some("https://evil.example".into()),
        ..Default::default()
    };
    refused_with(tamper, StatusCode::UNAUTHORIZED, "id_token_issuer").await;
}

#[tokio::test]
async fn an_id_token_signed_by_an_unknown_key_is_refused() {
    let tamper = Tamper {
        unknown_key: true,
        ..Default::default()
    };
    refused_with(tamper, StatusCode::UNAUTHORIZED, "id_token_signature").await;
}

#[tokio::test]
async fn an_unsigned_id_token_alg_none_is_refused() {
    let tamper = Tamper {
        alg_none: true,
        ..Default::default()
    };
    refused_with(tamper, StatusCode::UNAUTHORIZED, "id_token_signature").await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let tamper = Tamper {
        expires_in: Some(-120),
        ..Default::default()
    };
    refused_with(tamper, StatusCode::UNAUTHORIZED, "id_token_expired").await;
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let tamper = Tamper {
        nonce: Some("not-the-nonce-sent".into()),
        ..Default::default()
    };
    refused_with(tamper, StatusCode::UNAUTHORIZED, "id_token_nonce").await;
}

#[tokio::test]
async fn an_id_token_for_another_client_is_refused() {
    let tamper = Tamper {
        audience: Some("another-client".into()),
        ..Default::default()
    };
    refused_with(tamper, StatusCode::UNAUTHORIZED, "id_token_audience").await;
}

#[tokio::test]
async fn a_state_mismatch_is_refused() {
    let tamper = Tamper {
        state: Some("forged-state".into()),
        ..Default::default()
    };
    refused_with(tamper, StatusCode::BAD_REQUEST, "state_mismatch").await;
}

#[tokio::test]
async fn a_level_of_assurance_below_loa3_is_refused() {
    for acr in ["http://id.elegnamnden.se/loa/1.0/loa2", "urn:unknown:level"] {
        let tamper = Tamper {
            acr: Some(acr.into()),
            ..Default::default()
        };
        refused_with(tamper, StatusCode::FORBIDDEN, "loa_too_low").await;
    }
}

#[tokio::test]
async fn a_malformed_identity_number_is_refused_and_not_stored() {
    for bad in [
        json!("198001012388"),  // check digit
        json!("19800101-2387"), // not the profile's 12 digits
        json!("198013012387"),  // month 13
        json!(198001012387u64), // not a string
    ] {
        let tamper = Tamper {
            identity_number: Some(bad),
            ..Default::default()
        };
        refused_with(tamper, StatusCode::FORBIDDEN, "identity_malformed").await;
    }
}

#[tokio::test]
async fn private_key_jwt_signs_an_assertion_the_provider_checks_with_kuverts_jwks() {
    let provider = TestProvider::start().await;
    let app = TestApp::spawn_configured(None, provider.configure_private_key_jwt()).await;
    let published = app.browser().get("/login/jwks").await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.body);
    let jwks: serde_json::Value = serde_json::from_str(&published.body).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"))
    );
    assert!(key.get("d").is_none(), "the private half is not published");

    // A provider that holds another installation's keys refuses the code:
    // the assertion, signed with this installation's key, is what
    // authenticates kuvert (there is no secret).
    let other = TestApp::spawn().await;
    provider.trust_client_jwks(&format!("{}/login/jwks", other.url));
    let refused = app.browser().login_auto().await;
    assert_refused(&app, &refused, StatusCode::BAD_REQUEST, "code_refused").await;
    assert!(provider.assertions().is_empty());

    provider.trust_client_jwks(&format!("{}/login/jwks", app.url));
    for _ in 0..2 {
        let done = app.browser().login_auto().await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(provider.last_client_auth(), Some("private_key_jwt"));
    }
    let assertions = provider.assertions();
    assert_eq!(assertions.len(), 2);
    for claims in &assertions {
        assert_eq!(claims["iss"], TestProvider::CLIENT_ID);
        assert_eq!(claims["sub"], TestProvider::CLIENT_ID);
        assert_eq!(claims["aud"], format!("{}/token", provider.issuer));
        let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!(
            (1..=60).contains(&life),
            "a short-lived assertion: {life} s"
        );
    }
    assert_ne!(
        assertions[0]["jti"], assertions[1]["jti"],
        "a new jti each time"
    );
}
