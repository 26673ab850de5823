//! The published contract. `kuvert openapi` prints it; `docs/openapi.json`
//! is the committed copy and a test fails when the two drift apart.

use crate::api;
use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, Schema};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(what.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "sender",
            bearer("A tenant's API credential, `kvt_<id>.<secret>`"),
        );
        components.add_security_scheme("recipient", bearer(
            "A recipient token, `kvr2.…` (`kuvert recipient token`): for one audience (the mailbox \
             operator's id for /mailbox/v1, `register` for /register/v1/me) with scopes \
             (`mail.read`, `mail.manage`, `registration.read`, `registration.write`), an id that \
             can be revoked, and at most 24 hours of life",
        ));
        components.add_security_scheme("admin", bearer("The platform operator's token, `kva_…`"));
        components.add_security_scheme(
            "relay",
            bearer("A relay's credential at a mailbox operator, `kvm_<secret>`"),
        );
    }
}

/// Every error answer is `application/problem+json` (see [`crate::error`]),
/// and some come from the extractors rather than the handler, so they are
/// added here once instead of in every annotation: an operation with a JSON
/// body can answer 400 (not JSON), 413 (too large), 415 (not
/// `application/json`) and 422 (not the schema); one with query or
/// non-string path parameters can answer 400; one behind a credential, 401;
/// one behind a sender credential, 403 while the tenant is suspended. The
/// body limits: `POST /v1/deliveries` 3 MiB, `POST /v1/batches` 32 MiB,
/// `POST /mailbox/v1/deliveries` 40 MiB, every other body 64 KiB.
/// Found by the contract fuzzing (`scripts/contract.sh`).
struct Problems;

const PROBLEM_TYPE: &str = "application/problem+json";

fn problem(description: &str) -> RefOr<Response> {
    let mut response = Response::new(description);
    response.content.insert(
        PROBLEM_TYPE.to_owned(),
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    RefOr::T(response)
}

fn add_problems(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    for (status, response) in responses.iter_mut() {
        if let (false, RefOr::T(response)) = (status.starts_with('2'), response)
            && let Some(content) = response.content.shift_remove("application/json")
        {
            response.content.insert(PROBLEM_TYPE.to_owned(), content);
        }
    }
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description));
    };
    if operation.request_body.is_some() {
        add("400", "The body is not JSON");
        add(
            "413",
            "The body is larger than this endpoint accepts (64 KiB unless its description says otherwise)",
        );
        add("415", "The body is not `application/json`");
        add("422", "The body does not match the schema");
    }
    let typed_parameters = operation.parameters.iter().flatten().any(|p| {
        let string = matches!(&p.schema, Some(RefOr::T(Schema::Object(o)))
            if o.schema_type == SchemaType::Type(Type::String));
        match p.parameter_in {
            ParameterIn::Query => true,
            ParameterIn::Path => !string,
            _ => false,
        }
    });
    if typed_parameters {
        add("400", "A parameter is not of its type");
    }
    let security = operation.security.iter().flatten();
    let schemes = security
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .filter_map(|requirement| requirement.as_object().cloned())
        .flat_map(|requirement| requirement.into_iter().map(|(name, _)| name))
        .collect::<Vec<_>>();
    if !schemes.is_empty() {
        add("401", "No valid credential");
    }
    if schemes.iter().any(|s| s == "sender") {
        add("403", "The tenant is suspended (`tenant_suspended`)");
    }
}

impl Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_problems(operation);
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kuvert", description = "Secure digital mail between the public sector and the people and companies it serves.", version = "1"),
    paths(
        api::health::health, api::health::ready,
        api::deliveries::send, api::deliveries::status,
        api::batches::submit, api::batches::progress,
        api::status_feed::feed,
        api::reachability::lookup,
        api::keys::operator_keys, api::keys::installation_keys,
        api::keys::sender_certificates, api::keys::revocations,
        api::tenant::statistics, api::tenant::audit,
        api::recipient_profile::profile, api::recipient_profile::register, api::recipient_profile::deregister,
        api::recipient_profile::refuse, api::recipient_profile::accept,
        api::mailbox::deliver, api::mailbox::list, api::mailbox::read, api::mailbox::attachment,
        api::mailbox::archive, api::mailbox::unarchive, api::mailbox::delete,
        api::admin::list, api::admin::operators, api::admin::create, api::admin::suspend, api::admin::resume, api::admin::set_quota, api::admin::quota,
        api::admin::create_credential, api::admin::list_credentials, api::admin::revoke_credential,
        api::admin::add_sender, api::admin::remove_sender,
        api::admin::add_key, api::admin::revoke_key,
        api::admin::grant_web_sender, api::admin::revoke_web_sender, api::admin::create_web_key,
    ),
    modifiers(&Security, &Problems),
    tags(
        (name = "sender", description = "For authorities and förmedlare: send, follow status, look up reachability"),
        (name = "recipient", description = "For recipients: registration and reading"),
        (name = "register", description = "Published keys and certificates: what a sender or a court verifies receipts, seals, sender keys and audit checkpoints with"),
        (name = "mailbox-operator", description = "The delivery contract every mailbox operator implements"),
        (name = "admin", description = "For the platform operator: tenants and mailbox operators"),
        (name = "operations", description = "For whoever runs kuvert: liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON, exactly as committed.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
