//! The authorization matrix (issue #10): every endpoint, called as every kind
//! of caller, answers the exact refusal — status and problem+json `code`.
//!
//! [`TABLE`] has one row per operation: the audience it admits, the answer
//! its admitted caller gets (run last, as a control that the concrete path
//! parameters are real), and the refusals specific to the resource (another
//! tenant's delivery, recipient A's message read by B, a sender the tenant
//! may not send for, a forged relay seal). The credential-level refusals
//! every row of an audience shares are in [`credential_refusals`]; they are
//! sent without a body, since a caller is refused before the body is read.
//! Without a configured admin token the admin API answers 401 to everyone.
//!
//! Completeness: [`every_operation_has_a_row_and_every_row_an_operation`]
//! compares the table with the OpenAPI document and with every `.route("…")`
//! in `crates/web/src`; the matrix run also checks that every method a row
//! does not name answers 405 on that path. Adding an endpoint without a row
//! fails.

use kuvert_crypto::signing::SigningKey;
use kuvert_domain::identity::RecipientId;
use kuvert_domain::ids::{BatchId, DeliveryId, MailboxMessageId};
use kuvert_mailbox::protocol::{DeliverRequest, SealedDelivery};
use kuvert_testkit::{ADMIN_TOKEN, TestApp, batch_items, client, credential_id, exchange};
use kuvert_web::auth::RecipientTokens;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Who an endpoint admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// A tenant's credential, `kvt_<id>.<secret>`.
    Sender,
    /// A recipient token, `kvr2.…` (for the row's service).
    Recipient,
    /// The platform operator's token, `kva_…`.
    Admin,
    /// A relay: its credential `kvm_…` in the header, and its seal on each delivery.
    Relay,
    /// Anyone.
    Public,
}

/// The kinds of caller the matrix tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// No `Authorization` header.
    NoCredential,
    /// A token of the right prefix that does not parse.
    Malformed,
    /// Wrong kind: a tenant credential (demokommun's).
    SenderCredential,
    /// Wrong kind: Anna's recipient token.
    RecipientToken,
    /// Wrong kind: the platform operator's token.
    AdminToken,
    /// A credential of demokommun, revoked through the admin API.
    RevokedCredential,
    /// A valid credential of a suspended tenant.
    SuspendedTenant,
    /// Anna's token, minted with the installation's key, expired.
    ExpiredRecipientToken,
    /// `kva_` with the wrong secret.
    WrongAdminToken,
    /// Sender API: demoformedlare's credential on demokommun's object.
    /// Admin API: the operator naming another tenant's credential or key.
    OtherTenant,
    /// demokommun's credential, acting for demoformedlare's sender (signed
    /// with that sender's real key).
    SenderNotAllowed,
    /// demokommun's credential and sender, signed with demoformedlare's key.
    OtherTenantsKey,
    /// A credential of demokommun scoped to another sender of demokommun
    /// (one with nothing sent), on demokommun's first sender and its objects.
    ScopedCredential,
    /// Bertil's token on Anna's message.
    OtherRecipient,
    /// A sealed delivery sealed by a relay key the mailbox does not trust.
    UntrustedRelay,
    /// The trusted relay's key id, the seal signed by another key.
    ForgedSeal,
    /// A genuine, already delivered sealed delivery replayed with a forged seal.
    ReplayWithForgedSeal,
}

/// What a caller gets.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A problem+json answer with this status and code.
    Problem(u16, &'static str),
    /// This status; the first item of the answer is refused with this code
    /// (batches and relay deliveries refuse per item).
    Item(u16, &'static str),
    /// 404 `not_found`, byte for byte the answer for an id that does not exist.
    Hidden,
    /// 200, and nothing of demokommun's (or Anna's) in the body.
    OwnOnly,
}

struct Row {
    method: &'static str,
    path: &'static str,
    admits: Audience,
    /// The status the admitted caller gets (the control).
    ok: u16,
    /// Refusals beyond the audience's credential-level ones.
    extra: &'static [(Caller, Expect)],
}

const fn row(
    method: &'static str,
    path: &'static str,
    admits: Audience,
    ok: u16,
    extra: &'static [(Caller, Expect)],
) -> Row {
    Row {
        method,
        path,
        admits,
        ok,
        extra,
    }
}

use Audience::{Admin, Public, Recipient, Relay, Sender};
use Caller::*;
use Expect::*;

const UNAUTHORIZED: Expect = Problem(401, "unauthorized");

/// The refusals every endpoint of an audience gives, whatever the resource.
fn credential_refusals(audience: Audience) -> Vec<(Caller, Expect)> {
    match audience {
        Sender => vec![
            (NoCredential, UNAUTHORIZED),
            (Malformed, UNAUTHORIZED),
            (RecipientToken, UNAUTHORIZED),
            (AdminToken, UNAUTHORIZED),
            (RevokedCredential, UNAUTHORIZED),
            (SuspendedTenant, Problem(403, "tenant_suspended")),
        ],
        Recipient => vec![
            (NoCredential, UNAUTHORIZED),
            (Malformed, UNAUTHORIZED),
            (SenderCredential, UNAUTHORIZED),
            (AdminToken, UNAUTHORIZED),
            (ExpiredRecipientToken, UNAUTHORIZED),
        ],
        Admin => vec![
            (NoCredential, UNAUTHORIZED),
            (Malformed, UNAUTHORIZED),
            (SenderCredential, UNAUTHORIZED),
            (RecipientToken, UNAUTHORIZED),
            (WrongAdminToken, UNAUTHORIZED),
        ],
        // The credential first (before the body is read), then the seal of
        // each delivery.
        Relay => vec![
            (NoCredential, UNAUTHORIZED),
            (Malformed, UNAUTHORIZED),
            (SenderCredential, UNAUTHORIZED),
            (AdminToken, UNAUTHORIZED),
            (UntrustedRelay, Item(200, "unknown_relay")),
            (ForgedSeal, Item(200, "bad_seal")),
            (ReplayWithForgedSeal, Item(200, "bad_seal")),
        ],
        Public => vec![],
    }
}

/// Every operation. The controls run in this order, so the destructive ones
/// (delete, deregister, revoke) come after the rows that need their object.
static TABLE: &[Row] = &[
    // Sender API.
    row(
        "POST",
        "/v1/deliveries",
        Sender,
        202,
        &[
            (SenderNotAllowed, Problem(403, "sender_not_allowed")),
            (OtherTenantsKey, Problem(422, "signature_key_unknown")),
            (ScopedCredential, Problem(403, "sender_not_allowed")),
        ],
    ),
    row(
        "POST",
        "/v1/batches",
        Sender,
        202,
        &[
            (SenderNotAllowed, Item(202, "sender_not_allowed")),
            (OtherTenantsKey, Item(202, "signature_key_unknown")),
            (ScopedCredential, Item(202, "sender_not_allowed")),
        ],
    ),
    row(
        "GET",
        "/v1/deliveries/{id}",
        Sender,
        200,
        &[(OtherTenant, Hidden), (ScopedCredential, Hidden)],
    ),
    row(
        "GET",
        "/v1/batches/{id}",
        Sender,
        200,
        &[(OtherTenant, Hidden), (ScopedCredential, Hidden)],
    ),
    row(
        "GET",
        "/v1/status-feed",
        Sender,
        200,
        &[(OtherTenant, OwnOnly), (ScopedCredential, OwnOnly)],
    ),
    row(
        "POST",
        "/v1/reachability",
        Sender,
        200,
        &[
            (SenderNotAllowed, Problem(403, "sender_not_allowed")),
            (ScopedCredential, Problem(403, "sender_not_allowed")),
        ],
    ),
    row(
        "GET",
        "/v1/statistics",
        Sender,
        200,
        &[(OtherTenant, OwnOnly)],
    ),
    row(
        "GET",
        "/v1/audit",
        Sender,
        200,
        &[
            (OtherTenant, OwnOnly),
            (ScopedCredential, Problem(403, "credential_scoped")),
        ],
    ),
    // Mailbox operator contract.
    row("POST", "/mailbox/v1/deliveries", Relay, 200, &[]),
    // Published keys.
    row("GET", "/register/v1/keys", Public, 200, &[]),
    row("GET", "/register/v1/operators/{id}/keys", Public, 200, &[]),
    row(
        "GET",
        "/register/v1/senders/{id}/certificates",
        Public,
        200,
        &[],
    ),
    row("GET", "/register/v1/revocations", Public, 200, &[]),
    // Recipient API: the mailbox.
    row(
        "GET",
        "/mailbox/v1/messages",
        Recipient,
        200,
        &[(OtherRecipient, OwnOnly)],
    ),
    row(
        "GET",
        "/mailbox/v1/messages/{id}",
        Recipient,
        200,
        &[(OtherRecipient, Hidden)],
    ),
    row(
        "GET",
        "/mailbox/v1/messages/{id}/attachments/{index}",
        Recipient,
        200,
        &[(OtherRecipient, Hidden)],
    ),
    row(
        "POST",
        "/mailbox/v1/messages/{id}/archive",
        Recipient,
        204,
        &[(OtherRecipient, Hidden)],
    ),
    row(
        "DELETE",
        "/mailbox/v1/messages/{id}/archive",
        Recipient,
        204,
        &[(OtherRecipient, Hidden)],
    ),
    row(
        "DELETE",
        "/mailbox/v1/messages/{id}",
        Recipient,
        204,
        &[(OtherRecipient, Hidden)],
    ),
    // Recipient API: the register (always the caller's own profile).
    row("GET", "/register/v1/me", Recipient, 200, &[]),
    row(
        "PUT",
        "/register/v1/me/refused-senders/{sender}",
        Recipient,
        204,
        &[],
    ),
    row(
        "DELETE",
        "/register/v1/me/refused-senders/{sender}",
        Recipient,
        204,
        &[],
    ),
    row("PUT", "/register/v1/me", Recipient, 204, &[]),
    row("DELETE", "/register/v1/me", Recipient, 204, &[]),
    // Admin API (the spare tenant "authzspare" is the one acted on).
    row("GET", "/admin/v1/tenants", Admin, 200, &[]),
    row("GET", "/admin/v1/operators", Admin, 200, &[]),
    row("POST", "/admin/v1/tenants", Admin, 201, &[]),
    row("POST", "/admin/v1/tenants/{id}/suspend", Admin, 204, &[]),
    row("POST", "/admin/v1/tenants/{id}/resume", Admin, 204, &[]),
    row("GET", "/admin/v1/tenants/{id}/quota", Admin, 200, &[]),
    row("PUT", "/admin/v1/tenants/{id}/quota", Admin, 204, &[]),
    row(
        "POST",
        "/admin/v1/tenants/{id}/credentials",
        Admin,
        201,
        &[],
    ),
    row("GET", "/admin/v1/tenants/{id}/credentials", Admin, 200, &[]),
    row("POST", "/admin/v1/tenants/{id}/senders", Admin, 201, &[]),
    row(
        "POST",
        "/admin/v1/tenants/{id}/keys",
        Admin,
        201,
        &[(OtherTenant, Problem(404, "not_found"))],
    ),
    row(
        "DELETE",
        "/admin/v1/tenants/{id}/credentials/{credential}",
        Admin,
        204,
        &[(OtherTenant, Hidden)],
    ),
    row(
        "DELETE",
        "/admin/v1/tenants/{id}/keys/{key}",
        Admin,
        204,
        &[(OtherTenant, Hidden)],
    ),
    // Sending by hand (decision 0020).
    row(
        "POST",
        "/admin/v1/tenants/{id}/web-senders",
        Admin,
        201,
        &[(OtherTenant, Problem(422, "unknown_sender"))],
    ),
    row(
        "DELETE",
        "/admin/v1/tenants/{id}/web-senders/{grant}",
        Admin,
        204,
        &[(OtherTenant, Hidden)],
    ),
    row(
        "POST",
        "/admin/v1/tenants/{id}/web-keys",
        Admin,
        201,
        &[(OtherTenant, Problem(404, "not_found"))],
    ),
    // After the key rows: its control removes the spare tenant's sender.
    row(
        "DELETE",
        "/admin/v1/tenants/{id}/senders/{sender}",
        Admin,
        204,
        &[(OtherTenant, Hidden)],
    ),
    // Operations.
    row("GET", "/health", Public, 200, &[]),
    row("GET", "/ready", Public, 200, &[]),
    // Not in the OpenAPI document.
    row("GET", "/openapi.json", Public, 200, &[]),
];

/// Routes the router serves that the OpenAPI document does not describe.
const NOT_IN_OPENAPI: &[(&str, &str)] = &[("GET", "/openapi.json")];

/// The HTML pages and the development identity provider (issue 18): a
/// session cookie instead of a bearer token, and pages (or OAuth JSON)
/// instead of problems, so they have a table of their own, checked by
/// [`every_page_answers_each_caller_as_listed`]: the status without a
/// session, with a garbage or logged-out session cookie (the same), and
/// logged in (with the session's CSRF token in the form).
struct PageRow {
    method: &'static str,
    path: &'static str,
    /// Without a session, or with a cookie that is no session: status and,
    /// for a page, the error code it shows.
    anonymous: (u16, Option<&'static str>),
    logged_in: u16,
}

const fn page(
    method: &'static str,
    path: &'static str,
    anonymous: (u16, Option<&'static str>),
    logged_in: u16,
) -> PageRow {
    PageRow {
        method,
        path,
        anonymous,
        logged_in,
    }
}

static PAGES: &[PageRow] = &[
    page("GET", "/", (200, None), 200),
    page("GET", "/static/kuvert.css", (200, None), 200),
    // To the provider; logged in, back to the start page.
    page("GET", "/login", (303, None), 303),
    // No login under way in this browser.
    page("GET", "/login/callback", (400, Some("login_expired")), 400),
    page("POST", "/logout", (401, Some("not_logged_in")), 303),
    // kuvert's public client key (private_key_jwt), for the provider.
    page("GET", "/login/jwks", (200, None), 200),
    page(
        "GET",
        "/dev-idp/.well-known/openid-configuration",
        (200, None),
        200,
    ),
    page("GET", "/dev-idp/jwks", (200, None), 200),
    // Without an authorization request's parameters.
    page("GET", "/dev-idp/authorize", (400, None), 400),
    page("POST", "/dev-idp/authorize", (422, None), 422),
    page("POST", "/dev-idp/token", (422, None), 422),
    // The mailbox pages (pages/inbox.rs, pages/message.rs): logged in,
    // `{id}` is no message (404, as another person's); the archive form
    // here carries only the CSRF token, so it is refused before any lookup.
    page("GET", "/inbox", (401, Some("not_logged_in")), 200),
    page("GET", "/messages/{id}", (401, Some("not_logged_in")), 404),
    page(
        "GET",
        "/messages/{id}/body",
        (401, Some("not_logged_in")),
        404,
    ),
    page(
        "GET",
        "/messages/{id}/attachments/{index}",
        (401, Some("not_logged_in")),
        404,
    ),
    page(
        "POST",
        "/messages/{id}/archive",
        (401, Some("not_logged_in")),
        400,
    ),
    // A delegate's view: no delegation `{delegation}`, so not found.
    page(
        "GET",
        "/for/{delegation}/inbox",
        (401, Some("not_logged_in")),
        404,
    ),
    page(
        "GET",
        "/for/{delegation}/messages/{id}",
        (401, Some("not_logged_in")),
        404,
    ),
    page(
        "GET",
        "/for/{delegation}/messages/{id}/body",
        (401, Some("not_logged_in")),
        404,
    ),
    page(
        "GET",
        "/for/{delegation}/messages/{id}/attachments/{index}",
        (401, Some("not_logged_in")),
        404,
    ),
    page(
        "POST",
        "/for/{delegation}/messages/{id}/archive",
        (401, Some("not_logged_in")),
        404,
    ),
    // Delegation: the owner's page, the grant (only the CSRF field: no
    // valid number), a revocation and the delegate's view of a delegation
    // that does not exist (the literal `{id}`: like any missing page).
    page("GET", "/delegations", (401, Some("not_logged_in")), 200),
    page("POST", "/delegations", (401, Some("not_logged_in")), 400),
    page(
        "POST",
        "/delegations/{id}/revoke",
        (401, Some("not_logged_in")),
        404,
    ),
    page("GET", "/for/{id}", (401, Some("not_logged_in")), 404),
    // The sender pages: Anna holds no sender role, so every sender is, to
    // her, one that does not exist (the role itself: web_sender.rs).
    page("GET", "/sender", (401, Some("not_logged_in")), 200),
    page(
        "GET",
        "/sender/{sender}/new",
        (401, Some("not_logged_in")),
        404,
    ),
    // Without a multipart body and its CSRF field: refused before all else.
    page(
        "POST",
        "/sender/{sender}/new",
        (401, Some("not_logged_in")),
        403,
    ),
    page(
        "GET",
        "/sender/{sender}/sent",
        (401, Some("not_logged_in")),
        404,
    ),
    page(
        "GET",
        "/sender/{sender}/sent/{delivery}",
        (401, Some("not_logged_in")),
        404,
    ),
    // Settings (logged in, the form holds only the CSRF token): no terms
    // ticked, no sender named; empty contacts clear them; the zip.
    page("GET", "/settings", (401, Some("not_logged_in")), 200),
    page(
        "POST",
        "/settings/register",
        (401, Some("not_logged_in")),
        422,
    ),
    page(
        "POST",
        "/settings/senders",
        (401, Some("not_logged_in")),
        422,
    ),
    page(
        "POST",
        "/settings/contacts",
        (401, Some("not_logged_in")),
        303,
    ),
    page(
        "POST",
        "/settings/export",
        (401, Some("not_logged_in")),
        200,
    ),
    page(
        "GET",
        "/settings/deregister",
        (401, Some("not_logged_in")),
        200,
    ),
    // Last of the settings rows: Anna is deregistered by it.
    page(
        "POST",
        "/settings/deregister",
        (401, Some("not_logged_in")),
        303,
    ),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];

// ---------------------------------------------------------------------------
// Completeness

fn openapi_operations() -> BTreeSet<(String, String)> {
    let document: Value = serde_json::from_str(&kuvert_web::openapi::document()).unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if [
                "get", "post", "put", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// Every path literal given to `.route(` in the web crate's source.
fn routed_paths() -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src");
    let mut files = vec![root];
    let mut paths = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices(".route(") {
            let rest = text[at + ".route(".len()..].trim_start();
            let literal = rest
                .strip_prefix('"')
                .and_then(|r| r.split_once('"'))
                .map(|(p, _)| p.to_owned());
            let literal = literal
                .unwrap_or_else(|| panic!("{}: a .route( without a literal", path.display()));
            paths.insert(literal);
        }
    }
    paths
}

#[test]
fn every_operation_has_a_row_and_every_row_an_operation() {
    let rows: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(rows.len(), TABLE.len(), "a row is in the table twice");
    let mut known = openapi_operations();
    for (method, path) in NOT_IN_OPENAPI {
        assert!(
            known.insert(((*method).to_owned(), (*path).to_owned())),
            "{method} {path} is in the OpenAPI document now: drop it from NOT_IN_OPENAPI"
        );
    }
    let missing: Vec<_> = known.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "operations without a row in the authorization matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for operations that no longer exist: {stale:?}"
    );

    let table_paths: BTreeSet<String> = TABLE
        .iter()
        .map(|r| r.path)
        .chain(PAGES.iter().map(|p| p.path))
        .map(str::to_owned)
        .collect();
    let unlisted: Vec<_> = routed_paths().difference(&table_paths).cloned().collect();
    assert!(
        unlisted.is_empty(),
        "routes in crates/web without a row in the authorization matrix: {unlisted:?}"
    );
}

// ---------------------------------------------------------------------------
// The objects the matrix acts on

const SPARE: &str = "authzspare";
const SUSPENDED: &str = "authzsuspended";

struct Fixture {
    app: TestApp,
    kommun_token: String,
    formedlare_token: String,
    anna: String,
    anna_token: String,
    anna_registration_token: String,
    bertil_token: String,
    expired_anna_token: String,
    expired_anna_registration_token: String,
    revoked_token: String,
    suspended_token: String,
    scoped_token: String,
    /// demokommun → Anna, delivered, with a PDF.
    delivery: String,
    batch: String,
    anna_message: String,
    /// The relay's sealed form of `delivery`, as it went to the mailbox.
    sealed: SealedDelivery,
    operator_id: String,
    spare_credential: String,
    spare_sender: String,
    spare_key: String,
    /// A sender-role grant of the spare tenant, and the demo's of demokommun.
    spare_grant: String,
    kommun_grant: String,
    kommun_credential: String,
    kommun_key: String,
}

async fn sealed_in_outbox(app: &TestApp, delivery: &str) -> SealedDelivery {
    let sql = format!("SELECT sealed FROM outbox WHERE delivery_id = '{delivery}'");
    let blob: Vec<u8> = app.query("kuvert.db", &sql).await;
    serde_json::from_slice(&blob).unwrap()
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = app
        .request(method, path, Some(ADMIN_TOKEN), Some(&body))
        .await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// A tenant with one credential; returns the credential's token.
async fn new_tenant(app: &TestApp, id: &str) -> String {
    admin(
        app,
        Method::POST,
        "/admin/v1/tenants",
        json!({ "id": id, "name": id }),
    )
    .await;
    let created = admin(
        app,
        Method::POST,
        &format!("/admin/v1/tenants/{id}/credentials"),
        json!({ "label": "authz" }),
    )
    .await;
    created["token"].as_str().unwrap().to_owned()
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    let (kommun, sender) = app.kommun();
    let kommun_token = kommun.token.clone();
    let kommun_key = sender.key_id.clone();
    let formedlare_token = app.tenant("demoformedlare").token.clone();
    let anna = app.recipient("registered").id.clone();
    let bertil = app.person("Bertil Berg");

    // Anna's delivery, caught sealed in the outbox before the mailbox opens.
    app.set_mailbox_open(false);
    let to_anna = app
        .letter(sender, &anna, "Till Anna")
        .pdf("beslut.pdf", "Annas beslut")
        .signed();
    let delivery = app.send_accepted(&kommun_token, &to_anna).await;
    let sealed = sealed_in_outbox(&app, &delivery).await;
    app.set_mailbox_open(true);
    app.wait_delivered(&kommun_token, &delivery).await;

    // A batch of demokommun's (to Bertil, so Bertil has a message too).
    let to_bertil = app.letter(sender, &bertil, "Batch").signed();
    let batch = app
        .batch_accepted(&kommun_token, &batch_items(&[to_bertil]))
        .await;
    let batch_id = batch["batch_id"].as_str().unwrap().to_owned();
    let batch_delivery = batch["results"][0]["delivery_id"].as_str().unwrap();
    app.wait_final(&kommun_token, batch_delivery).await;

    let anna_token = app.recipient_token(&anna);
    let page = app.messages(&anna_token, "").await;
    assert_eq!(page.total, 1, "{page:?}");
    let anna_message = page.messages[0].id.clone();
    let anna_registration_token = app.registration_token(&anna);
    let (_, profile) = app
        .get("/register/v1/me", Some(&anna_registration_token))
        .await;
    let operator_id = profile["operator_id"].as_str().unwrap().to_owned();

    let key = kuvert::keys::Keys::load_existing(app.data_dir())
        .unwrap()
        .recipient_token;
    let expired_anna_token = RecipientTokens::new(key).mint_unchecked_for_tests(
        &RecipientId::parse_canonical(&anna).unwrap(),
        kuvert::app::BUILT_IN_OPERATOR,
        &[kuvert_web::auth::Scope::MailRead],
        0,
        1,
    );
    let expired_anna_registration_token = RecipientTokens::new(key).mint_unchecked_for_tests(
        &RecipientId::parse_canonical(&anna).unwrap(),
        kuvert_web::auth::REGISTER_AUDIENCE,
        &[
            kuvert_web::auth::Scope::RegistrationRead,
            kuvert_web::auth::Scope::RegistrationWrite,
        ],
        0,
        1,
    );

    // A revoked credential of demokommun.
    let created = admin(
        &app,
        Method::POST,
        "/admin/v1/tenants/demokommun/credentials",
        json!({ "label": "revoked" }),
    )
    .await;
    let revoked_token = created["token"].as_str().unwrap().to_owned();
    admin(
        &app,
        Method::DELETE,
        &format!(
            "/admin/v1/tenants/demokommun/credentials/{}",
            credential_id(&revoked_token)
        ),
        json!({}),
    )
    .await;

    // A credential of demokommun scoped to a second sender of demokommun.
    let second = kuvert::demo::organisation_number("202500999");
    admin(
        &app,
        Method::POST,
        "/admin/v1/tenants/demokommun/senders",
        json!({ "id": second, "name": "Kommunens andra nämnd" }),
    )
    .await;
    let created = admin(
        &app,
        Method::POST,
        "/admin/v1/tenants/demokommun/credentials",
        json!({ "label": "scoped", "senders": [second] }),
    )
    .await;
    let scoped_token = created["token"].as_str().unwrap().to_owned();

    // A suspended tenant with a valid credential.
    let suspended_token = new_tenant(&app, SUSPENDED).await;
    admin(
        &app,
        Method::POST,
        &format!("/admin/v1/tenants/{SUSPENDED}/suspend"),
        json!({}),
    )
    .await;

    // The spare tenant the admin rows act on: a credential, a sender, a key.
    let spare_token = new_tenant(&app, SPARE).await;
    let spare_sender = kuvert::demo::organisation_number("202300999");
    admin(
        &app,
        Method::POST,
        &format!("/admin/v1/tenants/{SPARE}/senders"),
        json!({ "id": spare_sender, "name": "Reservverket" }),
    )
    .await;
    let added = admin(
        &app,
        Method::POST,
        &format!("/admin/v1/tenants/{SPARE}/keys"),
        json!({ "sender": spare_sender,
                "public_key": SigningKey::generate().public_key().to_base64() }),
    )
    .await;

    let granted = admin(
        &app,
        Method::POST,
        &format!("/admin/v1/tenants/{SPARE}/web-senders"),
        json!({ "sender": spare_sender, "person": kuvert::demo::person_number("19600101", 101) }),
    )
    .await;
    let kommun_grant: String = app
        .query(
            "kuvert.db",
            "SELECT credential_id FROM web_sender_grants WHERE tenant_id = 'demokommun'",
        )
        .await;

    Fixture {
        spare_grant: granted["grant"].as_str().unwrap().to_owned(),
        kommun_grant,
        kommun_credential: credential_id(&kommun_token),
        kommun_token,
        formedlare_token,
        anna,
        anna_token,
        anna_registration_token,
        bertil_token: app.recipient_token(&bertil),
        expired_anna_token,
        expired_anna_registration_token,
        revoked_token,
        suspended_token,
        scoped_token,
        delivery,
        batch: batch_id,
        anna_message,
        sealed,
        operator_id,
        spare_credential: credential_id(&spare_token),
        spare_sender,
        spare_key: added["key_id"].as_str().unwrap().to_owned(),
        kommun_key,
        app,
    }
}

// ---------------------------------------------------------------------------
// Requests

struct Call {
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Value>,
}

/// `None` for the admitted caller (the control).
type Who = Option<Caller>;

impl Fixture {
    /// The row's path with real objects; `missing` puts ids that do not exist
    /// where the caller's refusal must look like a missing object.
    fn path(&self, row: &Row, who: Who, missing: bool) -> String {
        let other_tenant = who == Some(OtherTenant);
        let (id, credential, key) = match row.path {
            p if p.starts_with("/v1/deliveries/") => (
                if missing {
                    DeliveryId::new().to_string()
                } else {
                    self.delivery.clone()
                },
                String::new(),
                String::new(),
            ),
            p if p.starts_with("/v1/batches/") => (
                if missing {
                    BatchId::new().to_string()
                } else {
                    self.batch.clone()
                },
                String::new(),
                String::new(),
            ),
            p if p.starts_with("/register/v1/operators/") => {
                (self.operator_id.clone(), String::new(), String::new())
            }
            p if p.starts_with("/register/v1/senders/") => {
                (self.app.kommun().1.id.clone(), String::new(), String::new())
            }
            p if p.starts_with("/mailbox/v1/messages/") => (
                if missing {
                    MailboxMessageId::new().to_string()
                } else {
                    self.anna_message.clone()
                },
                String::new(),
                String::new(),
            ),
            _ => (
                SPARE.to_owned(),
                match (missing, other_tenant) {
                    (true, _) => "no-such-credential".to_owned(),
                    (false, true) => self.kommun_credential.clone(),
                    (false, false) => self.spare_credential.clone(),
                },
                match (missing, other_tenant) {
                    (true, _) => "no-such-key".to_owned(),
                    (false, true) => self.kommun_key.clone(),
                    (false, false) => self.spare_key.clone(),
                },
            ),
        };
        let (kommun, _) = self.app.kommun();
        let sender = match (row.path.starts_with("/admin/"), missing, other_tenant) {
            (true, true, _) => kuvert::demo::organisation_number("209900998"),
            (true, false, false) => self.spare_sender.clone(),
            _ => kommun.senders[0].id.clone(),
        };
        row.path
            .replace("{id}", &id)
            .replace("{index}", "0")
            .replace("{credential}", &credential)
            .replace("{key}", &key)
            .replace("{sender}", &sender)
            .replace(
                "{grant}",
                match (missing, other_tenant) {
                    (true, _) => "no-such-grant",
                    (false, true) => &self.kommun_grant,
                    (false, false) => &self.spare_grant,
                },
            )
    }

    /// The token `who` presents at `row`. A recipient's token is for the
    /// row's service: the mailbox, or the register (`/register/v1/me`).
    fn token(&self, row: &Row, who: Who) -> Option<String> {
        let audience = row.admits;
        let register = row.path.starts_with("/register/v1/me");
        let token = match who {
            None if register && audience == Recipient => &self.anna_registration_token,
            None => match audience {
                Sender => &self.kommun_token,
                Recipient => &self.anna_token,
                Admin => ADMIN_TOKEN,
                Relay => self.app.relay_credential(),
                Public => return None,
            },
            Some(NoCredential) => return None,
            Some(UntrustedRelay | ForgedSeal | ReplayWithForgedSeal) => self.app.relay_credential(),
            Some(Malformed) => match audience {
                Sender => "kvt_no-separator",
                Recipient => "kvr2.bm90IGEgdG9rZW4.AAAA",
                Admin => "not-an-operator-token",
                Relay => "kvm_not-a-relay-credential",
                Public => "garbage",
            },
            Some(SenderCredential | SenderNotAllowed | OtherTenantsKey) => &self.kommun_token,
            Some(RecipientToken) => &self.anna_token,
            Some(AdminToken) => ADMIN_TOKEN,
            Some(RevokedCredential) => &self.revoked_token,
            Some(SuspendedTenant) => &self.suspended_token,
            Some(ScopedCredential) => &self.scoped_token,
            Some(ExpiredRecipientToken) if register => &self.expired_anna_registration_token,
            Some(ExpiredRecipientToken) => &self.expired_anna_token,
            Some(WrongAdminToken) => "kva_not-the-operators-token",
            Some(OtherTenant) => match audience {
                Admin => ADMIN_TOKEN,
                _ => &self.formedlare_token,
            },
            Some(OtherRecipient) => &self.bertil_token,
        };
        Some(token.to_owned())
    }

    /// A signed delivery to Anna: demokommun's own, or for the refusals that
    /// hinge on the sender or the key, demoformedlare's sender or key.
    fn signed(&self, who: Who) -> Value {
        let (_, own) = self.app.kommun();
        let other = &self.app.tenant("demoformedlare").senders[0];
        let signed = match who {
            Some(SenderNotAllowed) => self
                .app
                .sign(other, self.app.delivery(other, &self.anna, "x")),
            Some(OtherTenantsKey) => client::sign(
                self.app.delivery(own, &self.anna, "x"),
                &other.key().unwrap(),
            ),
            _ => self.app.sign(own, self.app.delivery(own, &self.anna, "x")),
        };
        serde_json::to_value(signed).unwrap()
    }

    fn body(&self, row: &Row, who: Who) -> Option<Value> {
        let (kommun, _) = self.app.kommun();
        let other = &self.app.tenant("demoformedlare").senders[0];
        let body = match (row.method, row.path) {
            ("POST", "/v1/deliveries") => self.signed(who),
            ("POST", "/v1/batches") => json!({ "deliveries": [self.signed(who)] }),
            ("POST", "/v1/reachability") => {
                let sender = match who {
                    Some(SenderNotAllowed) => &other.id,
                    _ => &kommun.senders[0].id,
                };
                json!({ "sender": sender, "recipients": [self.anna] })
            }
            ("POST", "/mailbox/v1/deliveries") => {
                let stranger = SigningKey::generate();
                let mut sealed = self.sealed.clone();
                match who {
                    Some(UntrustedRelay) => {
                        sealed.delivery_id = DeliveryId::new().to_string();
                        sealed.relay_key_id = stranger.public_key().key_id();
                        sealed.sign(&stranger);
                    }
                    Some(ForgedSeal) => {
                        sealed.delivery_id = DeliveryId::new().to_string();
                        sealed.sign(&stranger);
                    }
                    Some(ReplayWithForgedSeal) => sealed.sign(&stranger),
                    _ => {}
                }
                serde_json::to_value(DeliverRequest {
                    deliveries: vec![sealed],
                })
                .unwrap()
            }
            ("PUT", "/register/v1/me") => json!({ "operator_id": self.operator_id }),
            ("POST", "/admin/v1/tenants") => json!({ "id": "authzcreated", "name": "Ny" }),
            ("PUT", "/admin/v1/tenants/{id}/quota") => json!({ "deliveries_per_day": 1000 }),
            ("POST", "/admin/v1/tenants/{id}/credentials") => json!({ "label": "authz" }),
            ("POST", "/admin/v1/tenants/{id}/senders") => json!({
                "id": kuvert::demo::organisation_number("202400999"), "name": "Nytt verk"
            }),
            ("POST", "/admin/v1/tenants/{id}/web-senders") => {
                // A new person each call: a second grant to one is a 409.
                static SERIAL: std::sync::atomic::AtomicU16 =
                    std::sync::atomic::AtomicU16::new(200);
                let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                json!({
                    "sender": if who == Some(OtherTenant) { &kommun.senders[0].id } else { &self.spare_sender },
                    "person": kuvert::demo::person_number("19600101", serial),
                })
            }
            ("POST", "/admin/v1/tenants/{id}/web-keys") => json!({
                "sender": if who == Some(OtherTenant) { &kommun.senders[0].id } else { &self.spare_sender },
            }),
            ("POST", "/admin/v1/tenants/{id}/keys") => json!({
                "sender": if who == Some(OtherTenant) { &kommun.senders[0].id } else { &self.spare_sender },
                "public_key": SigningKey::generate().public_key().to_base64(),
            }),
            _ => return None,
        };
        Some(body)
    }

    /// A refusal that only depends on the credential is checked without a
    /// body: the caller is refused before the body is looked at.
    fn call(&self, row: &Row, who: Who, missing: bool) -> Call {
        let credential_level = matches!(
            who,
            Some(
                NoCredential
                    | Malformed
                    | SenderCredential
                    | RecipientToken
                    | AdminToken
                    | RevokedCredential
                    | SuspendedTenant
                    | ExpiredRecipientToken
                    | WrongAdminToken
            )
        ) && row.admits != Public;
        Call {
            method: row.method.parse().unwrap(),
            path: self.path(row, who, missing),
            token: self.token(row, who),
            body: if credential_level {
                None
            } else {
                self.body(row, who)
            },
        }
    }

    async fn send(&self, call: Call) -> (StatusCode, Option<String>, Vec<u8>) {
        let answer = self
            .app
            .request_raw(
                call.method,
                &call.path,
                call.token.as_deref(),
                call.body.as_ref(),
            )
            .await;
        let content_type = answer.content_type().map(str::to_owned);
        (answer.status, content_type, answer.bytes)
    }

    /// The ids of demokommun's and Anna's objects, and Anna's identity
    /// number: no refusal, and no answer to anyone else, may show them.
    fn theirs(&self) -> [&str; 4] {
        [&self.delivery, &self.batch, &self.anna_message, &self.anna]
    }

    /// Checks one refusal; returns what was wrong, if anything.
    async fn check(&self, row: &Row, who: Caller, expect: Expect) -> Option<String> {
        let what = format!("{} {} as {who:?}", row.method, row.path);
        let (status, content_type, bytes) = self.send(self.call(row, Some(who), false)).await;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = String::from_utf8_lossy(&bytes);
        let problem = |status_wanted: u16, code: &str| -> Option<String> {
            if status.as_u16() != status_wanted
                || body["code"] != code
                || body["status"] != status_wanted
                || content_type.as_deref() != Some("application/problem+json")
            {
                return Some(format!(
                    "{what}: want {status_wanted} {code}, got {status} {content_type:?} {text}"
                ));
            }
            None
        };
        match expect {
            Problem(s, code) => problem(s, code).or_else(|| {
                // A refusal tells nothing of the object it refused.
                self.theirs()
                    .into_iter()
                    .find(|t| text.contains(t))
                    .map(|leaked| format!("{what}: the refusal shows {leaked}: {text}"))
            }),
            Hidden => {
                if let Some(wrong) = problem(404, "not_found") {
                    return Some(wrong);
                }
                let (missing_status, _, missing) = self.send(self.call(row, Some(who), true)).await;
                (missing_status != status || missing != bytes).then(|| {
                    format!(
                        "{what}: differs from a missing id: {text} vs {missing_status} {}",
                        String::from_utf8_lossy(&missing)
                    )
                })
            }
            Item(s, code) => {
                let item = &body["results"][0];
                let item_code = item["error"]["code"]
                    .as_str()
                    .or(item["rejection"]["code"].as_str());
                (status.as_u16() != s || item_code != Some(code) || item.get("receipt").is_some())
                    .then(|| format!("{what}: want {s} with item {code}, got {status} {text}"))
            }
            OwnOnly => {
                if status != StatusCode::OK {
                    return Some(format!("{what}: want 200, got {status} {text}"));
                }
                let mut theirs = self.theirs().to_vec();
                theirs.push("demokommun");
                theirs
                    .into_iter()
                    .find(|t| text.contains(t))
                    .map(|leaked| format!("{what}: the answer shows {leaked}: {text}"))
            }
        }
    }

    /// The admitted caller gets the row's status.
    async fn control(&self, row: &Row) -> Option<String> {
        let (status, _, bytes) = self.send(self.call(row, None, false)).await;
        let text = String::from_utf8_lossy(&bytes);
        if status.as_u16() != row.ok {
            return Some(format!(
                "{} {} as its {:?} (control): want {}, got {status} {text}",
                row.method, row.path, row.admits, row.ok
            ));
        }
        if row.admits == Relay {
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            if body["results"][0]["outcome"] != "delivered" {
                return Some(format!("relay control: a genuine redelivery got {text}"));
            }
        }
        None
    }
}

fn refusals(row: &Row) -> Vec<(Caller, Expect)> {
    let mut all = credential_refusals(row.admits);
    all.extend_from_slice(row.extra);
    all
}

#[tokio::test]
async fn every_endpoint_refuses_every_caller_it_does_not_admit() {
    let mut fx = fixture().await;
    let mut wrong = Vec::new();
    let (mut refused, mut not_allowed) = (0, 0);
    for row in TABLE {
        for (who, expect) in refusals(row) {
            refused += 1;
            wrong.extend(fx.check(row, who, expect).await);
        }
        if row.admits == Public {
            // Public: a credential, even garbage, changes nothing.
            refused += 1;
            let (status, _, _) = fx.send(fx.call(row, Some(Malformed), false)).await;
            if status.as_u16() != row.ok {
                wrong.push(format!(
                    "{} {} with garbage: {status}",
                    row.method, row.path
                ));
            }
        }
    }
    // Every method a row does not name answers 405, whoever calls.
    let paths: BTreeSet<&str> = TABLE.iter().map(|r| r.path).collect();
    for path in paths {
        let row = TABLE.iter().find(|r| r.path == path).unwrap();
        for method in METHODS {
            if TABLE.iter().any(|r| r.path == path && r.method == *method) {
                continue;
            }
            not_allowed += 1;
            let call = Call {
                method: method.parse().unwrap(),
                path: fx.path(row, None, false),
                token: fx.token(row, None),
                body: None,
            };
            let (status, _, _) = fx.send(call).await;
            if status != StatusCode::METHOD_NOT_ALLOWED {
                wrong.push(format!("{method} {path}: want 405, got {status}"));
            }
        }
    }
    // Last, the admitted callers: the objects were real all along.
    for row in TABLE {
        wrong.extend(fx.control(row).await);
    }
    let checks = refused + not_allowed + TABLE.len();
    eprintln!(
        "authorization matrix: {} rows; {refused} caller checks, {not_allowed} unlisted \
         methods (405), {} controls",
        TABLE.len(),
        TABLE.len()
    );
    assert!(
        wrong.is_empty(),
        "{} of {checks} checks failed:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    fx.app.stop().await;
}

/// An installation without an admin token refuses every caller of the admin
/// API exactly as it refuses a wrong token: 401, whatever is presented.
#[tokio::test]
async fn without_a_configured_admin_token_the_admin_api_answers_401_to_everyone() {
    let mut app = TestApp::spawn_with(|s| s.admin_token = None).await;
    let mut wrong = Vec::new();
    for row in TABLE.iter().filter(|r| r.admits == Admin) {
        let path = row
            .path
            .replace("{id}", "demokommun")
            .replace("{credential}", "x")
            .replace("{key}", "x");
        for token in [
            None,
            Some(ADMIN_TOKEN),
            Some("kva_anything"),
            Some("not-a-token"),
        ] {
            let request = app.http_request(row.method.parse().unwrap(), &path, token);
            let (status, body) = exchange(request).await.parts();
            if status != StatusCode::UNAUTHORIZED || body["code"] != "unauthorized" {
                wrong.push(format!(
                    "{} {path} with {token:?}: want 401 unauthorized, got {status} {body}",
                    row.method
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    app.stop().await;
}

/// One page row, called by `browser` (a form with `csrf`, if given).
async fn call_page(
    browser: &kuvert_testkit::oidc::Browser,
    row: &PageRow,
    csrf: Option<String>,
) -> kuvert_testkit::oidc::Seen {
    match (row.method, csrf) {
        ("GET", _) => browser.get(row.path).await,
        (_, Some(csrf)) => browser.post_form(row.path, &[("csrf", &csrf)]).await,
        (_, None) => browser.post_form(row.path, &[]).await,
    }
}

#[tokio::test]
async fn every_page_answers_each_caller_as_listed() {
    use kuvert_testkit::oidc::Browser;
    let app = TestApp::spawn().await;
    let anna = app
        .dev_idp_people()
        .iter()
        .position(|p| p.given_name == "Anna")
        .unwrap();
    // A session that was logged out: its cookie is as good as none.
    let before = app.browser();
    let old = before
        .login_dev_idp(anna)
        .await
        .cookie("kuvert_session")
        .unwrap();
    let csrf = before.csrf().await.unwrap();
    assert_eq!(
        before.post_form("/logout", &[("csrf", &csrf)]).await.status,
        303
    );
    let with_cookie = |value: &str| {
        let browser = Browser::new(&app.url);
        browser.jar.add_cookie_str(
            &format!("kuvert_session={value}"),
            &app.url.parse().unwrap(),
        );
        browser
    };
    let mut methods_checked = BTreeSet::new();
    let mut wrong = Vec::new();
    let mut checks = 0;
    for row in PAGES {
        // Fresh browsers for each row: a `GET /login` leaves a login under way.
        let callers = [
            ("anonymous", app.browser()),
            ("logged out", with_cookie(&old)),
            ("garbage", with_cookie("bm90LWEtc2Vzc2lvbg")),
        ];
        for (who, browser) in &callers {
            checks += 1;
            let seen = call_page(browser, row, None).await;
            let (status, code) = row.anonymous;
            let code_shown = code.is_none_or(|c| seen.body.contains(&format!("<code>{c}</code>")));
            if seen.status.as_u16() != status || !code_shown {
                wrong.push(format!(
                    "{} {} as {who}: want {status} {code:?}, got {} {}",
                    row.method, row.path, seen.status, seen.body
                ));
            }
        }
        // Logged in (a fresh session per row: the logout row ends its own).
        checks += 1;
        let browser = app.browser();
        browser.login_dev_idp(anna).await;
        let csrf = browser.csrf().await;
        let seen = call_page(&browser, row, csrf).await;
        if seen.status.as_u16() != row.logged_in {
            wrong.push(format!(
                "{} {} logged in: want {}, got {} {}",
                row.method, row.path, row.logged_in, seen.status, seen.body
            ));
        }
        if !methods_checked.insert(row.path) {
            continue;
        }
        for method in METHODS {
            if PAGES
                .iter()
                .any(|r| r.path == row.path && r.method == *method)
            {
                continue;
            }
            checks += 1;
            let status = browser
                .http
                .request(method.parse().unwrap(), format!("{}{}", app.url, row.path))
                .send()
                .await
                .unwrap()
                .status();
            if status != StatusCode::METHOD_NOT_ALLOWED {
                wrong.push(format!("{method} {}: want 405, got {status}", row.path));
            }
        }
    }
    eprintln!("pages: {} rows, {checks} checks", PAGES.len());
    assert!(
        wrong.is_empty(),
        "{} of {checks} checks failed:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
