//! The Gateway methods in the document: one path per method behind the dynamic `/{method}`
//! route, by GET (query parameters) and POST (a JSON or form body), each parameter as
//! `params.rs` reads it from each source, and the envelope with the error strings each HTTP
//! status can carry (`GatewayError::status`).

use super::{header, FORM, GATEWAY_BEARER, GATEWAY_PARAM, JSON};
use crate::api::error::GatewayError;
use crate::api::gateway::GatewayMethod;
use crate::config::ErrorStatus;
use crate::domain::{LimitKind, Rate, Refusal};
use actix_web::http::StatusCode;
use std::collections::BTreeMap;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required, ResponseBuilder};
use utoipa::ToSchema;

/// The parameters of `sendVerificationMessage`. Unknown parameters are ignored.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `gateway::parse_send` reads.
struct SendVerificationMessageParams {
    /// The recipient's number in E.164, with or without `+`: a known country calling code and
    /// 8–15 digits in all; no spaces, dashes, parentheses or `00` prefix. In a query string or
    /// form, send `+` as `%2B` (a single leading space is read as `+`). In JSON, a number is
    /// accepted too. Anything else: `PHONE_NUMBER_INVALID`.
    #[schema(pattern = r"^\+?[1-9][0-9]{7,14}$", example = "+15551234567")]
    phone_number: String,
    /// The `request_id` of an earlier successful `checkSendAbility` of the tenant: the send
    /// continues that request and is free. Unknown or revoked: `REQUEST_ID_INVALID`; used
    /// already: `MESSAGE_ALREADY_SENT`; another number: `PHONE_NUMBER_MISMATCH`.
    #[schema(pattern = "^[0-9]{1,19}$", example = "923583492968596")]
    request_id: Option<String>,
    /// The Telegram channel the code is sent on behalf of (with or without `@`), registered to
    /// the tenant (`SENDER_NOT_OWNED`) and verified (`SENDER_NOT_VERIFIED`; not needed for the
    /// tenant's own number). Not a username: `SENDER_USERNAME_INVALID`.
    #[schema(pattern = "^@?[A-Za-z][A-Za-z0-9_]{4,31}$", example = "acme_codes")]
    sender_username: Option<String>,
    /// The tenant's own code: 4–8 ASCII digits, else `CODE_INVALID`. When given,
    /// `code_length` is ignored.
    #[schema(pattern = "^[0-9]{4,8}$", example = "482913")]
    code: Option<String>,
    /// The length of a code verigram generates: 4–8, else `CODE_LENGTH_INVALID`. Neither
    /// `code` nor `code_length`: `CODE_LENGTH_REQUIRED`. In JSON, a decimal string is accepted too.
    #[schema(minimum = 4, maximum = 8, example = 6)]
    code_length: Option<u8>,
    /// Where delivery reports go: an `https` URL of at most 256 bytes, without user info, whose
    /// host is not (and does not resolve to) an internal address; else `CALLBACK_URL_INVALID`.
    #[schema(format = "uri", max_length = 256, example = "https://example.com/verigram-reports")]
    callback_url: Option<String>,
    /// At most 128 bytes (UTF-8) of the tenant's own data, echoed in every RequestStatus and
    /// report, never shown to the user; else `PAYLOAD_INVALID`.
    #[schema(max_length = 128, example = "signup-42")]
    payload: Option<String>,
    /// Seconds, 30–3600 (else `TTL_INVALID`): not delivered by then, the message is deleted and
    /// the fee refunded; delivered but unread, it is still deleted. Also the code's validity.
    /// In JSON, a decimal string is accepted too.
    #[schema(minimum = 30, maximum = 3600, example = 600)]
    ttl: Option<u16>,
}

/// The parameters of `checkSendAbility`. Unknown parameters are ignored.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `gateway::handle` reads.
struct CheckSendAbilityParams {
    /// The number to check, in E.164 as for `sendVerificationMessage`; else
    /// `PHONE_NUMBER_INVALID`.
    #[schema(pattern = r"^\+?[1-9][0-9]{7,14}$", example = "+15551234567")]
    phone_number: String,
}

/// The parameters of `checkVerificationStatus`. Unknown parameters are ignored.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `gateway::handle` reads.
struct CheckVerificationStatusParams {
    /// The request to look at: absent, `REQUEST_ID_REQUIRED`; unknown or another tenant's,
    /// `REQUEST_ID_INVALID`.
    #[schema(pattern = "^[0-9]{1,19}$", example = "923583492968596")]
    request_id: String,
    /// The code the user typed. Without it the call only reads the status. Anything that is not
    /// 4–8 digits (any JSON value) counts as a wrong code, never as an error.
    #[schema(value_type = Value, required = false, example = "482913")]
    code: Option<String>,
}

/// The parameters of `revokeVerificationMessage`. Unknown parameters are ignored.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes what `gateway::handle` reads.
struct RevokeVerificationMessageParams {
    /// The request to revoke: absent, `REQUEST_ID_REQUIRED`; unknown or another tenant's,
    /// `REQUEST_ID_INVALID`.
    #[schema(pattern = "^[0-9]{1,19}$", example = "923583492968596")]
    request_id: String,
}

/// What a method takes and what its `result` is.
struct MethodDoc {
    params: (String, RefOr<Schema>),
    /// `true` for a revocation, else a RequestStatus.
    answers_true: bool,
    summary: &'static str,
    description: &'static str,
}

fn method_doc(method: GatewayMethod) -> MethodDoc {
    fn params<T: ToSchema>() -> (String, RefOr<Schema>) {
        (T::name().into_owned(), T::schema())
    }
    match method {
        GatewayMethod::SendVerificationMessage => MethodDoc {
            params: params::<SendVerificationMessageParams>(),
            answers_true: false,
            summary: "Send a verification code",
            description: "Makes (or takes the tenant's) code and queues its message; answers as soon as the request, its fee and its delivery job are stored, so `delivery_status` is usually absent yet. Charges the price of one message (free for the tenant's own number, and for a send that continues a `checkSendAbility` request); `remaining_balance` shows the balance when it charged. Checks, in order: token, `phone_number`, `code`/`code_length`, `request_id`, `sender_username`, `callback_url`, `payload`, `ttl`, then the stored state (sender registration, `request_id`, balance) and the rate limits (`FLOOD_WAIT_<seconds>`). Errors are never charged.",
        },
        GatewayMethod::CheckSendAbility => MethodDoc {
            params: params::<CheckSendAbilityParams>(),
            answers_true: false,
            summary: "Check that a number can receive codes",
            description: "If a code can be delivered to the number, charges the price of one message now and answers a RequestStatus without `delivery_status`; its `request_id` makes one later `sendVerificationMessage` to the number free. A number that cannot receive codes (or a country the tenant does not send to): `PHONE_NUMBER_NOT_FOUND`, free. Counts against the same rate limits as a send.",
        },
        GatewayMethod::CheckVerificationStatus => MethodDoc {
            params: params::<CheckVerificationStatusParams>(),
            answers_true: false,
            summary: "Read a request's status, or check the code the user typed",
            description: "Without `code`: the current status, changing nothing. With `code`: compares it in constant time; `verification_status` becomes `code_valid`, `code_invalid` (with `code_entered`), or `code_max_attempts_exceeded` after the tenant's limit of wrong codes (5 by default); once `code_valid`, `expired` or `code_max_attempts_exceeded`, later checks answer the same status without evaluating. Wrong codes also count against the number's daily budget (`limits.wrong_checks`): when it is spent, checks with a code answer `FLOOD_WAIT_<seconds>`.",
        },
        GatewayMethod::RevokeVerificationMessage => MethodDoc {
            params: params::<RevokeVerificationMessageParams>(),
            answers_true: true,
            summary: "Revoke a verification message",
            description: "The code never verifies again (`verification_status` becomes `expired`); a message not yet delivered is deleted (`delivery_status` `revoked`). Not refunded. Answers `true`.",
        },
    }
}

/// One path per method, with a GET (query parameters) and a POST (form or JSON body)
/// operation, and the envelope's schemas.
pub(super) fn add_gateway(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in envelope_schemas() {
        components.schemas.insert(name, schema);
    }
    for method in GatewayMethod::ALL {
        let spec = method_doc(method);
        let (params_name, params_schema) = &spec.params;
        let stem = params_name.trim_end_matches("Params");
        let (json_name, form_name) = (format!("{stem}Json"), format!("{stem}Form"));
        let form = as_read_from(params_schema, Source::Text);
        let components = doc.components.get_or_insert_with(Default::default);
        components.schemas.insert(json_name.clone(), as_read_from(params_schema, Source::Json));
        components.schemas.insert(form_name.clone(), form.clone());
        let path = format!("/{}", method.as_str());
        let get = gateway_operation(method, &spec, Source::Text).parameters(Some(query_parameters(&form))).build();
        let body = RequestBodyBuilder::new()
            .description(Some(
                "The parameters as a JSON object or a form (UTF-8; a `charset` other than `utf-8`, a \
                 `Content-Encoding`, another media type, malformed JSON or a body over `server.body_limit` \
                 answer `BAD_REQUEST`). Parameters in the query string are read too; the body wins. An \
                 empty body is allowed (the query string alone then counts).",
            ))
            .content(JSON, Content::new(Some(Ref::from_schema_name(json_name))))
            .content(FORM, Content::new(Some(Ref::from_schema_name(form_name))))
            .build();
        let post = gateway_operation(method, &spec, Source::Json).request_body(Some(body)).build();
        doc.paths.add_path_operation(&path, vec![HttpMethod::Get], get);
        doc.paths.add_path_operation(&path, vec![HttpMethod::Post], post);
    }
}

/// The GET operation (`Source::Text`: parameters in the query string) or the POST one
/// (`Source::Json`: parameters in a JSON or form body) of a method. POST keeps the method's
/// own name as its id, as client generators name their calls after it.
fn gateway_operation(method: GatewayMethod, spec: &MethodDoc, by: Source) -> OperationBuilder {
    let result = if spec.answers_true { "GatewayTrueAnswer" } else { "GatewayStatusAnswer" };
    let (id, transport) = match by {
        Source::Text => (format!("{}ByGet", method.as_str()), "Parameters in the query string."),
        Source::Json => (method.as_str().to_owned(), "Parameters in a JSON or form body (and the query string)."),
    };
    let mut op = OperationBuilder::new()
        .tag("Gateway")
        .operation_id(Some(id))
        .summary(Some(spec.summary))
        .description(Some(format!("{} {transport}", spec.description)))
        .security(SecurityRequirement::new(GATEWAY_BEARER, Vec::<String>::new()))
        .security(SecurityRequirement::new(GATEWAY_PARAM, Vec::<String>::new()));
    let ok = ResponseBuilder::new()
        .description(
            "The answer. With `api.error_status = \"ok\"` (the default), errors are HTTP 200 too: \
             `{\"ok\":false,\"error\":…}`.",
        )
        .content(
            JSON,
            Content::new(Some(
                OneOfBuilder::new()
                    .item(Ref::from_schema_name(result))
                    .item(Ref::from_schema_name(error_schema_name(StatusCode::OK))),
            )),
        );
    op = op.response("200", with_rate_limit_headers(ok).build());
    for (status, description) in gateway_error_statuses() {
        let mut response = ResponseBuilder::new()
            .description(description)
            .content(JSON, Content::new(Some(Ref::from_schema_name(error_schema_name(status)))));
        if status == StatusCode::TOO_MANY_REQUESTS {
            response = with_rate_limit_headers(response);
        }
        op = op.response(status.as_str(), response.build());
    }
    op
}

/// The statuses of error answers other than 200, and what each means.
fn gateway_error_statuses() -> [(StatusCode, &'static str); 7] {
    let semantic = "With `api.error_status = \"semantic\"` only.";
    [
        (StatusCode::BAD_REQUEST, semantic),
        (StatusCode::UNAUTHORIZED, semantic),
        (StatusCode::PAYMENT_REQUIRED, semantic),
        (StatusCode::NOT_FOUND, semantic),
        (StatusCode::TOO_MANY_REQUESTS, semantic),
        (StatusCode::INTERNAL_SERVER_ERROR, "A failure of ours (details in the server log only)."),
        (StatusCode::SERVICE_UNAVAILABLE, "The store cannot be reached: nothing was sent, charged or verified."),
    ]
}

pub(super) fn error_schema_name(status: StatusCode) -> String {
    match status {
        StatusCode::OK => "GatewayError".to_owned(),
        other => format!("GatewayError{}", other.as_u16()),
    }
}

/// One value of every Gateway error (the match below fails to compile when one is added, so
/// the list cannot fall behind).
pub(super) fn gateway_errors() -> Vec<GatewayError> {
    use GatewayError::*;
    let flood = FloodWait(Refusal {
        kind: LimitKind::Phone,
        rate: Rate { rate: 1, per: 1, burst: 1 },
        retry_after: std::time::Duration::from_secs(1),
    });
    let all = vec![
        AccessTokenRequired,
        AccessTokenInvalid,
        UnknownMethod,
        PhoneNumberInvalid,
        PhoneNumberNotFound,
        PhoneNumberMismatch,
        RequestIdRequired,
        RequestIdInvalid,
        MessageAlreadySent,
        CodeInvalid,
        CodeLengthInvalid,
        CodeLengthRequired,
        TtlInvalid,
        PayloadInvalid,
        CallbackUrlInvalid,
        SenderUsernameInvalid,
        SenderNotVerified,
        SenderNotOwned,
        BalanceNotEnough,
        flood,
        BadRequest,
        Internal,
        ServiceUnavailable,
    ];
    for e in &all {
        match e {
            AccessTokenRequired
            | AccessTokenInvalid
            | UnknownMethod
            | PhoneNumberInvalid
            | PhoneNumberNotFound
            | PhoneNumberMismatch
            | RequestIdRequired
            | RequestIdInvalid
            | MessageAlreadySent
            | CodeInvalid
            | CodeLengthInvalid
            | CodeLengthRequired
            | TtlInvalid
            | PayloadInvalid
            | CallbackUrlInvalid
            | SenderUsernameInvalid
            | SenderNotVerified
            | SenderNotOwned
            | BalanceNotEnough
            | FloodWait(_)
            | BadRequest
            | Internal
            | ServiceUnavailable => {}
        }
    }
    all
}

/// The envelope: `{"ok":true,"result":…}` and, for each HTTP status an error can have, the
/// error strings it can carry, as `GatewayError::status` maps them.
fn envelope_schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut by_status: BTreeMap<u16, (Vec<&'static str>, bool)> = BTreeMap::new();
    for e in gateway_errors() {
        let flood = matches!(e, GatewayError::FloodWait(_));
        let mut statuses = vec![e.status(ErrorStatus::Semantic), e.status(ErrorStatus::Ok)];
        statuses.dedup();
        for status in statuses {
            let entry = by_status.entry(status.as_u16()).or_default();
            if flood {
                entry.1 = true;
            } else {
                entry.0.push(e.name());
            }
        }
    }
    let mut schemas = vec![
        (
            "GatewayStatusAnswer".to_owned(),
            success(Ref::from_schema_name("RequestStatus").into(), "A method's answer: the request's status."),
        ),
        (
            "GatewayTrueAnswer".to_owned(),
            success(
                ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([true])).into(),
                "`revokeVerificationMessage`'s answer.",
            ),
        ),
    ];
    for (status, (names, flood)) in by_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        schemas.push((error_schema_name(status), error_envelope(status, names, flood)));
    }
    schemas
}

fn success(result: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some(description))
        .property("ok", ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([true])))
        .required("ok")
        .property("result", result)
        .required("result")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

fn error_envelope(status: StatusCode, names: Vec<&'static str>, flood: bool) -> RefOr<Schema> {
    let listed = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names.clone()));
    let flood_wait = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^FLOOD_WAIT_[1-9][0-9]*$"))
        .description(Some("Rate limited: retry after that many seconds (also in `Retry-After`)."));
    let error: RefOr<Schema> = match (names.is_empty(), flood) {
        (false, true) => AnyOfBuilder::new().item(listed).item(flood_wait).into(),
        (true, true) => flood_wait.into(),
        _ => listed.into(),
    };
    let description = match status {
        StatusCode::OK => "An error answered with HTTP 200 (`api.error_status = \"ok\"`, the default).".to_owned(),
        s if s.is_server_error() => format!("An error answered with HTTP {} in either mode.", s.as_u16()),
        s => format!("An error answered with HTTP {} (`api.error_status = \"semantic\"`).", s.as_u16()),
    };
    ObjectBuilder::new()
        .description(Some(description))
        .property("ok", ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([false])))
        .required("ok")
        .property("error", error)
        .required("error")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// A FLOOD_WAIT answer's headers: `Retry-After` and the IETF RateLimit fields naming the limit.
fn with_rate_limit_headers(response: ResponseBuilder) -> ResponseBuilder {
    let integer = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
    let string = || ObjectBuilder::new().schema_type(Type::String);
    response
        .header("Retry-After", header(integer(), "FLOOD_WAIT only: seconds until the limit allows the call again."))
        .header(
            "RateLimit-Policy",
            header(
                string().examples([serde_json::json!("\"phone\";q=12;w=3600")]),
                "FLOOD_WAIT only: the limit that fired, as `\"<limit>\";q=<quota>;w=<window seconds>` \
                 (draft-ietf-httpapi-ratelimit-headers).",
            ),
        )
        .header(
            "RateLimit",
            header(
                string().examples([serde_json::json!("\"phone\";r=0;t=300")]),
                "FLOOD_WAIT only: the limit's state, `\"<limit>\";r=0;t=<seconds until it allows again>`.",
            ),
        )
}

/// Where parameters come from: a query string or form (text only), or a JSON object.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Text,
    Json,
}

/// A method's parameters as `params.rs` reads them from `source`: every value is read as its
/// text, so in JSON a string parameter may also be a number (or, without a pattern, a boolean)
/// and an integer parameter a decimal string; an empty value, or JSON `null`, is "not given",
/// which an optional parameter may be.
fn as_read_from(schema: &RefOr<Schema>, source: Source) -> RefOr<Schema> {
    let mut schema = schema.clone();
    let RefOr::T(Schema::Object(object)) = &mut schema else { return schema };
    for (name, property) in object.properties.iter_mut() {
        let optional = !object.required.contains(name);
        let RefOr::T(Schema::Object(p)) = property else { continue };
        let types: Vec<Type> = match &p.schema_type {
            SchemaType::Type(t) => vec![t.clone()],
            SchemaType::Array(types) => types.iter().filter(|t| **t != Type::Null).cloned().collect(),
            SchemaType::AnyValue => continue,
        };
        let description = p.description.take();
        let mut alternatives: Vec<RefOr<Schema>> = Vec::new();
        match types.as_slice() {
            [Type::String] if source == Source::Json => {
                let scalars = match p.pattern {
                    Some(_) => vec![Type::String, Type::Number],
                    None => vec![Type::String, Type::Number, Type::Boolean],
                };
                p.schema_type = SchemaType::Array(scalars);
                alternatives.push(Schema::Object(p.clone()).into());
            }
            [Type::Integer] if source == Source::Json => {
                p.schema_type = SchemaType::Type(Type::Integer);
                alternatives.push(Schema::Object(p.clone()).into());
                let text = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^\+?[0-9]+$"));
                alternatives.push(text.description(Some("The same integer as a decimal string.")).into());
            }
            [one] => {
                p.schema_type = SchemaType::Type(one.clone());
                alternatives.push(Schema::Object(p.clone()).into());
            }
            _ => continue,
        }
        if optional {
            let empty = ObjectBuilder::new().schema_type(Type::String).enum_values(Some([""]));
            alternatives.push(empty.description(Some("Empty: not given.")).into());
            if source == Source::Json {
                alternatives.push(ObjectBuilder::new().schema_type(Type::Null).description(Some("Not given.")).into());
            }
        }
        *property = match alternatives.len() {
            1 => {
                let mut only = alternatives.remove(0);
                if let RefOr::T(Schema::Object(o)) = &mut only {
                    o.description = description;
                }
                only
            }
            _ => {
                let mut any_of = utoipa::openapi::schema::AnyOf::new();
                any_of.items = alternatives;
                any_of.description = description;
                Schema::AnyOf(any_of).into()
            }
        };
    }
    schema
}

/// The properties of an object schema as query parameters.
fn query_parameters(schema: &RefOr<Schema>) -> Vec<utoipa::openapi::path::Parameter> {
    let RefOr::T(Schema::Object(object)) = schema else { return Vec::new() };
    object
        .properties
        .iter()
        .map(|(name, property)| {
            let description = match property {
                RefOr::T(Schema::Object(p)) => p.description.clone(),
                RefOr::T(Schema::AnyOf(p)) => p.description.clone(),
                _ => None,
            };
            let required = if object.required.contains(name) { Required::True } else { Required::False };
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(required)
                .description(description)
                .schema(Some(property.clone()))
                .build()
        })
        .collect()
}
