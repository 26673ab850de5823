//! The published contract. `kuvert openapi` prints it; `docs/openapi.json`
//! is the committed copy and a test fails when the two drift apart.

use crate::api;
use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
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
        components.add_security_scheme("recipient", bearer("A recipient token, `kvr1.…`"));
        components.add_security_scheme("admin", bearer("The platform operator's token, `kva_…`"));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kuvert", description = "Secure digital mail between the public sector and the people and companies it serves.", version = "1"),
    paths(
        api::deliveries::send, api::deliveries::status,
        api::batches::submit, api::batches::progress,
        api::status_feed::feed,
        api::reachability::lookup,
        api::tenant::statistics, api::tenant::audit,
        api::recipient_profile::profile, api::recipient_profile::register, api::recipient_profile::deregister,
        api::recipient_profile::refuse, api::recipient_profile::accept,
        api::mailbox::deliver, api::mailbox::list, api::mailbox::read, api::mailbox::attachment,
        api::mailbox::archive, api::mailbox::unarchive, api::mailbox::delete,
        api::admin::list, api::admin::create, api::admin::suspend, api::admin::resume, api::admin::set_quota,
        api::admin::create_credential, api::admin::revoke_credential, api::admin::add_sender,
        api::admin::add_key, api::admin::revoke_key,
    ),
    modifiers(&Security),
    tags(
        (name = "sender", description = "For authorities and förmedlare: send, follow status, look up reachability"),
        (name = "recipient", description = "For recipients: registration and reading"),
        (name = "mailbox-operator", description = "The delivery contract every mailbox operator implements"),
        (name = "admin", description = "For the platform operator: tenants"),
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
