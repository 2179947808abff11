//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! Schemas come from the types the handlers serialize (`#[derive(ToSchema)]` beside them);
//! this module adds what the code decides at run time: the Gateway methods behind the dynamic
//! `/{method}` route (one path per method, each by GET with query parameters and by POST with
//! a form or JSON body), the envelope with the error strings each HTTP status can carry (from
//! `GatewayError::status`), the admin errors by status (from `AdminError`), and the headers.

use super::admin::AdminError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Header, OpenApi, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{OpenApi as _, PartialSchema};

/// The security scheme of the Gateway's API tokens in `Authorization: Bearer`.
pub(super) const GATEWAY_BEARER: &str = "gatewayToken";
/// The same token as the `access_token` parameter.
pub(super) const GATEWAY_PARAM: &str = "accessToken";
/// The admin API's token (`admin.token`).
const ADMIN_BEARER: &str = "adminToken";

pub(super) const JSON: &str = "application/json";
pub(super) const FORM: &str = "application/x-www-form-urlencoded";

const DESCRIPTION: &str = "\
verigram is a self-hosted, multi-tenant service that speaks the \
[Telegram Gateway API](https://core.telegram.org/gateway/api): code written for the Gateway works \
against it by changing only the base URL.

**Gateway methods** are at `/{methodName}`, the name in any case (another name: `UNKNOWN_METHOD`), \
by `GET` or `POST` (another HTTP method: `BAD_REQUEST`), with the parameters in the query string, an \
`application/x-www-form-urlencoded` body or an `application/json` body (UTF-8; the body wins over the \
query; `null` and empty values mean \"not given\"; integers may be JSON numbers or strings; a parameter \
given twice in one source, or as a JSON array or object, is invalid). `multipart/form-data` is not \
accepted. The token goes in `Authorization: Bearer <token>` or in `access_token`.

**Answers** are JSON: `{\"ok\":true,\"result\":<RequestStatus>}` (`result` is `true` for \
`revokeVerificationMessage`) or `{\"ok\":false,\"error\":\"UPPER_SNAKE_CASE\"}`. With \
`api.error_status = \"ok\"` (the default) every answer the API gives is HTTP 200, errors included; with \
`\"semantic\"`, errors are 400, 401 (token), 402 (`BALANCE_NOT_ENOUGH`), 404 (`UNKNOWN_METHOD`, \
`REQUEST_ID_INVALID`) or 429 (`FLOOD_WAIT_<seconds>`). Our own failures are 5xx in either mode: \
`INTERNAL_ERROR` (500) and `SERVICE_UNAVAILABLE` (503: the store is unreachable; nothing was sent, \
charged or verified). A rate-limited answer (`FLOOD_WAIT_<seconds>`) carries `Retry-After`, \
`RateLimit-Policy` and `RateLimit`. The method name and the body are read before the token is checked, \
so `UNKNOWN_METHOD` and `BAD_REQUEST` come first. Every answer carries `X-Request-Id`.

The **admin API** (`/admin/v1`, JSON resources with HTTP statuses, the admin token as a bearer token) \
and the **sandbox inbox** (`/sandbox`) exist only while they are switched on (`admin.token`; the sandbox \
sender).";

/// The document. Deterministic: the same code gives the same bytes.
pub fn document() -> OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(DESCRIPTION.to_owned());
    add_security_schemes(&mut doc);
    gateway::add_gateway(&mut doc);
    add_admin_errors(&mut doc);
    optional_bodies(&mut doc);
    unsigned_formats(&mut doc);
    add_trace_header(&mut doc);
    doc
}

/// `GET /openapi.json`.
pub async fn serve() -> HttpResponse {
    match document().to_json() {
        Ok(json) => HttpResponse::Ok().content_type("application/json").body(json),
        Err(e) => {
            tracing::error!(error = &e as &dyn std::error::Error, "cannot render the OpenAPI document");
            HttpResponse::InternalServerError().finish()
        }
    }
}

mod gateway;
mod routes;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "verigram",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::healthz,
        routes::readyz,
        routes::metrics,
        routes::openapi,
        routes::create_tenant,
        routes::list_tenants,
        routes::get_tenant,
        routes::update_tenant,
        routes::add_credit,
        routes::ledger,
        routes::list_tokens,
        routes::issue_token,
        routes::revoke_token,
        routes::rotate_token,
        routes::set_ip_allow,
        routes::explain_limits,
        routes::dead_reports,
        routes::replay_dead_report,
        routes::put_sender,
        routes::remove_sender,
        routes::list_accounts,
        routes::delivery_backlog,
        routes::add_account,
        routes::pause_account,
        routes::resume_account,
        routes::remove_account,
        routes::sandbox_page,
        routes::sandbox_page_slash,
        routes::sandbox_messages,
        routes::sandbox_read,
    ),
    components(schemas(crate::domain::RequestStatusView)),
    tags(
        (name = "Gateway", description = "The Telegram Gateway API's four methods: `/{methodName}`, the name in any case."),
        (name = "Admin", description = "The operator's API: tenants, settings, money, tokens, limits, delivery reports and the pool of sender accounts. On only while `admin.token` is set; every route needs `Authorization: Bearer <admin.token>`."),
        (name = "Sandbox", description = "The sandbox sender's inbox: what recipients would see. Present only while the sandbox sender is active, in processes that run delivery workers. Development only: anyone who reaches it reads every code."),
        (name = "Operations", description = "Probes, metrics and this document."),
    )
)]
struct ApiDoc;

fn add_security_schemes(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        GATEWAY_BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The tenant's API token (`Authorization: Bearer <token>`). Missing: \
                     `ACCESS_TOKEN_REQUIRED`; unknown, revoked, expired or used from an address outside \
                     the token's allow-list: `ACCESS_TOKEN_INVALID`. Given here and as `access_token` \
                     with different values: `ACCESS_TOKEN_INVALID`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        GATEWAY_PARAM,
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "access_token",
            "The tenant's API token as the `access_token` parameter: in the query string, or in the \
             form or JSON body.",
        ))),
    );
    components.add_security_scheme(
        ADMIN_BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The admin token (`admin.token`): `Authorization: Bearer <admin.token>`."))
                .build(),
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// The admin API's errors.

/// One value of every admin error (the match below fails to compile when one is added).
fn admin_errors() -> Vec<AdminError> {
    use AdminError::*;
    let all = vec![
        Unauthorized,
        NotFound(String::new()),
        Invalid(String::new()),
        Conflict(String::new()),
        Unavailable,
        Internal,
        Throttled(crate::domain::Refusal {
            kind: crate::domain::LimitKind::AuthFailures,
            rate: crate::domain::Rate { rate: 1, per: 1, burst: 1 },
            retry_after: std::time::Duration::from_secs(1),
        }),
    ];
    for e in &all {
        match e {
            Unauthorized | NotFound(_) | Invalid(_) | Conflict(_) | Unavailable | Internal | Throttled(_) => {}
        }
    }
    all
}

fn admin_error_schema_name(status: StatusCode) -> String {
    format!("AdminError{}", status.as_u16())
}

/// Every admin operation answers errors as `{"error":<code>,"message":…}`, the code fixed by
/// the status (`AdminError`): its error responses get the status's own schema, and every one
/// gets 401, 500 and 503 (and, with a body, 413: actix-web's own answer to a body over 64 KiB).
fn add_admin_errors(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let mut statuses: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for e in admin_errors() {
        statuses.entry(e.status_code().as_u16()).or_default().push(e.code());
    }
    let base = match super::admin::ErrorBody::schema() {
        RefOr::T(Schema::Object(o)) => o,
        _ => Default::default(),
    };
    for (status, codes) in &statuses {
        let mut object = base.clone();
        object.properties.insert(
            "error".to_owned(),
            ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes.clone())).into(),
        );
        object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        components.schemas.insert(admin_error_schema_name(status), Schema::Object(object).into());
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/admin/") {
            continue;
        }
        for op in operations(item) {
            let has_body = op.request_body.is_some();
            for (status, response) in op.responses.responses.iter_mut() {
                let Ok(status) = status.parse::<u16>() else { continue };
                if !statuses.contains_key(&status) {
                    continue;
                }
                if let RefOr::T(response) = response {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    response.content.insert(
                        JSON.to_owned(),
                        Content::new(Some(Ref::from_schema_name(admin_error_schema_name(status)))),
                    );
                }
            }
            let common = [
                (StatusCode::UNAUTHORIZED, "The admin token is missing or wrong."),
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed authentications from this address (limits.auth_failures); see Retry-After.",
                ),
                (StatusCode::INTERNAL_SERVER_ERROR, "A failure of ours (details in the server log only)."),
                (StatusCode::SERVICE_UNAVAILABLE, "The store cannot be reached."),
            ];
            for (status, description) in common {
                op.responses.responses.entry(status.as_str().to_owned()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description(description)
                        .content(JSON, Content::new(Some(Ref::from_schema_name(admin_error_schema_name(status)))))
                        .build()
                        .into()
                });
            }
            if has_body {
                op.responses.responses.entry("413".to_owned()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description("The body is over 64 KiB (actix-web's own plain-text answer).")
                        .content("text/plain", Content::new(Some(ObjectBuilder::new().schema_type(Type::String))))
                        .build()
                        .into()
                });
            }
        }
    }
}

/// A body declared as `Option<T>` may be left out (an empty body), but is never `null`: its
/// schema is `T`'s, and it is not required.
fn optional_bodies(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            let Some(body) = op.request_body.as_mut() else { continue };
            for content in body.content.values_mut() {
                let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else { continue };
                let not_null: Vec<_> = one_of
                    .items
                    .iter()
                    .filter(
                        |s| !matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null)),
                    )
                    .cloned()
                    .collect();
                if let [only] = not_null.as_slice() {
                    content.schema = Some(only.clone());
                    body.required = Some(Required::False);
                }
            }
        }
    }
}

/// utoipa gives Rust's unsigned integers the formats `int32` and `int64` (with `minimum: 0`),
/// which tools read as signed bounds (`u32`'s upper half and `u64`'s would look invalid): they
/// are `uint32` and `uint64`.
fn unsigned_formats(doc: &mut OpenApi) {
    fn visit(schema: &mut RefOr<Schema>) {
        let RefOr::T(schema) = schema else { return };
        match schema {
            Schema::Object(o) => {
                let unsigned = match o.minimum {
                    Some(utoipa::Number::Int(n)) => n == 0,
                    Some(utoipa::Number::UInt(n)) => n == 0,
                    Some(utoipa::Number::Float(n)) => n == 0.0,
                    None => false,
                };
                let integer = match &o.schema_type {
                    SchemaType::Type(t) => *t == Type::Integer,
                    SchemaType::Array(types) => types.contains(&Type::Integer),
                    SchemaType::AnyValue => false,
                };
                if integer && unsigned {
                    let format = match &o.format {
                        Some(SchemaFormat::KnownFormat(KnownFormat::Int32)) => Some("uint32"),
                        Some(SchemaFormat::KnownFormat(KnownFormat::Int64)) => Some("uint64"),
                        _ => None,
                    };
                    if let Some(format) = format {
                        o.format = Some(SchemaFormat::Custom(format.to_owned()));
                    }
                }
                o.properties.values_mut().for_each(visit);
                if let Some(AdditionalProperties::RefOr(s)) = o.additional_properties.as_deref_mut() {
                    visit(s);
                }
            }
            Schema::Array(a) => {
                if let ArrayItems::RefOrSchema(items) = &mut a.items {
                    visit(items);
                }
            }
            Schema::OneOf(s) => s.items.iter_mut().for_each(visit),
            Schema::AnyOf(s) => s.items.iter_mut().for_each(visit),
            Schema::AllOf(s) => s.items.iter_mut().for_each(visit),
            _ => {}
        }
    }
    if let Some(components) = doc.components.as_mut() {
        components.schemas.values_mut().for_each(visit);
    }
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            for parameter in op.parameters.iter_mut().flatten() {
                if let Some(schema) = parameter.schema.as_mut() {
                    visit(schema);
                }
            }
            let bodies = op.request_body.iter_mut().flat_map(|b| b.content.values_mut());
            let answers = op.responses.responses.values_mut().flat_map(|r| match r {
                RefOr::T(r) => Some(r.content.values_mut()),
                RefOr::Ref(_) => None,
            });
            for content in bodies.chain(answers.flatten()) {
                if let Some(schema) = content.schema.as_mut() {
                    visit(schema);
                }
            }
        }
    }
}

pub(super) fn header(schema: ObjectBuilder, description: &str) -> Header {
    HeaderBuilder::new().schema(schema).description(Some(description)).build()
}

/// Every answer carries `X-Request-Id`, the trace id of the HTTP request (not a Gateway
/// `request_id`).
fn add_trace_header(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            for response in op.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.headers.insert(
                        "X-Request-Id".to_owned(),
                        header(
                            ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9a-f]{32}$")),
                            "The trace id of this HTTP request, as in the server log.",
                        ),
                    );
                }
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head, &mut item.options]
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::gateway::{error_schema_name, gateway_errors};
    use super::*;
    use crate::api::error::GatewayError;
    use crate::config::ErrorStatus;

    #[test]
    fn every_error_string_has_a_status_schema() {
        let doc = document();
        let schemas = &doc.components.as_ref().unwrap().schemas;
        for e in gateway_errors() {
            for mode in [ErrorStatus::Ok, ErrorStatus::Semantic] {
                let name = error_schema_name(e.status(mode));
                let text = serde_json::to_string(&schemas[&name]).unwrap();
                let listed = match e {
                    GatewayError::FloodWait(_) => text.contains("FLOOD_WAIT_"),
                    _ => text.contains(&format!("\"{}\"", e.name())),
                };
                assert!(listed, "{} is not in {name}", e.name());
            }
        }
    }

    #[test]
    fn the_document_is_deterministic() {
        assert_eq!(document().to_json().unwrap(), document().to_json().unwrap());
    }
}
