//! The route table ([`routes`]) and the OpenAPI 3.1 document built from it
//! ([`document`]). Every request and response body is described by the serde
//! type the handler takes or returns (their schemas are derived with
//! `utoipa`); the table adds what types cannot say: who may call a route,
//! which statuses it answers and why.
//!
//! The router in `mod.rs` must serve exactly these routes; a test walks the
//! table to check every route answers and every role gets what it says, and
//! every response the HTTP tests receive is checked against the document.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::StatusCode;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths,
    Ref, RefOr, Required, ResponseBuilder, Responses,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::admin::{AllInvalidated, TableInvalidated, UserInvalidated, UsersQuery};
use super::cache_api::{
    DeltaBody, KeyAdded, KeyCounter, KeyDeleted, KeyExists, KeyPersisted, KeyStored, KeyTouched,
    KeyTtl, KeyValue, KeysBody, LockBody, LockReleased, LockTaken, ManyDeleted, ManyStored,
    ManyValues, SetManyBody, TouchBody, UnlockQuery, UserVersion, ValueBody,
};
use super::error::ErrorBody;
use super::extract::SESSION_COOKIE;
use super::session::{CacheFlag, Cleared, LoginBody, Me, SignedIn, SignedOut, UserCacheFlag};
use crate::control::{HealthReport, MeView, UsersPage};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// These roles (`"user"` here means: only on their own namespace when the
    /// route names a user).
    Roles(&'static [&'static str]),
}

/// Schemas by name, as components collect them.
type Schemas = Vec<(String, RefOr<Schema>)>;

/// A JSON body's type: the name of its schema, and how to gather that schema
/// and every schema it refers to.
#[derive(Debug, Clone, Copy)]
pub struct BodyType {
    name: fn() -> Cow<'static, str>,
    gather: fn(&mut Schemas),
}

impl BodyType {
    /// The body of type `T`.
    pub const fn of<T: ToSchema>() -> BodyType {
        BodyType {
            name: T::name,
            gather: gather::<T>,
        }
    }

    /// The name of its schema in `#/components/schemas`.
    pub fn name(&self) -> Cow<'static, str> {
        (self.name)()
    }

    /// A reference to its schema.
    fn reference(&self) -> Ref {
        Ref::from_schema_name(self.name())
    }
}

fn gather<T: ToSchema>(schemas: &mut Schemas) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// A route's request body.
#[derive(Debug, Clone, Copy)]
pub struct RequestDoc {
    /// Its type.
    pub body: BodyType,
    /// An example, as JSON.
    pub example: &'static str,
}

/// A route's query parameters, from the type the handler parses them into.
#[derive(Debug, Clone, Copy)]
pub struct QueryDoc(fn() -> Vec<Parameter>);

impl QueryDoc {
    /// The parameters of type `T`.
    pub const fn of<T: IntoParams>() -> QueryDoc {
        QueryDoc(query_params::<T>)
    }
}

fn query_params<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

/// What a response carries.
#[derive(Debug, Clone, Copy)]
pub enum Content {
    /// JSON of this type.
    Json(BodyType),
    /// Prometheus text.
    Prometheus,
    /// This document (a JSON object).
    Document,
}

/// One answer a route gives when it does what was asked.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// What it means.
    pub description: &'static str,
    /// The body.
    pub content: Content,
    /// A response header worth knowing: name and what it holds.
    pub header: Option<(&'static str, &'static str)>,
}

/// One documented route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// HTTP method (`GET`, `PUT`, `POST` or `DELETE`).
    pub method: &'static str,
    /// Path, with `{param}`s.
    pub path: &'static str,
    /// Unique name of the operation (for generated clients).
    pub operation_id: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Its request body, if it takes one.
    pub request: Option<RequestDoc>,
    /// Its query parameters, if it takes any.
    pub query: Option<QueryDoc>,
    /// Its answers when it succeeds.
    pub answers: &'static [Answer],
    /// Errors of its own, as (status, `error.code`), beyond those every route
    /// of its kind may give (see [`RouteDoc::errors`]).
    pub own_errors: &'static [(u16, &'static str)],
    /// Whether it reaches the cache store or the database (so may fail with
    /// 500 or 503).
    pub uses_backends: bool,
}

const fn ok(description: &'static str, body: BodyType) -> Answer {
    Answer {
        status: 200,
        description,
        content: Content::Json(body),
        header: None,
    }
}

const fn ok_setting_cookie(description: &'static str, body: BodyType) -> Answer {
    Answer {
        header: Some((
            "Set-Cookie",
            "The session cookie (cleared when signing out)",
        )),
        ..ok(description, body)
    }
}

impl RouteDoc {
    /// A route giving these `answers` when it succeeds; reaching the
    /// backends, with no request body, query or errors of its own until the
    /// methods below say otherwise.
    const fn new(
        method: &'static str,
        path: &'static str,
        operation_id: &'static str,
        summary: &'static str,
        access: Access,
        answers: &'static [Answer],
    ) -> RouteDoc {
        RouteDoc {
            method,
            path,
            operation_id,
            summary,
            access,
            request: None,
            query: None,
            answers,
            own_errors: &[],
            uses_backends: true,
        }
    }

    /// With a request body of type `body`.
    const fn takes(self, body: BodyType, example: &'static str) -> RouteDoc {
        RouteDoc {
            request: Some(RequestDoc { body, example }),
            ..self
        }
    }

    /// With query parameters.
    const fn query(self, query: QueryDoc) -> RouteDoc {
        RouteDoc {
            query: Some(query),
            ..self
        }
    }

    /// With errors of its own.
    const fn fails(self, own_errors: &'static [(u16, &'static str)]) -> RouteDoc {
        RouteDoc { own_errors, ..self }
    }

    /// Touching neither the cache store nor the database.
    const fn offline(self) -> RouteDoc {
        RouteDoc {
            uses_backends: false,
            ..self
        }
    }

    /// The names of its path parameters, in order.
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
    }

    /// Every error it may answer: `error.code`s by status.
    pub fn errors(&self) -> BTreeMap<u16, Vec<&'static str>> {
        let mut errors: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
        let mut add = |status: u16, code: &'static str| {
            let codes = errors.entry(status).or_default();
            if !codes.contains(&code) {
                codes.push(code);
            }
        };
        if self.path_params().next().is_some() {
            add(400, "bad_path");
            add(422, "invalid");
        }
        if self.query.is_some() {
            add(400, "bad_query");
        }
        if self.request.is_some() {
            add(400, "bad_json");
            add(408, "body_timeout");
            add(413, "payload_too_large");
            add(415, "unsupported_media_type");
            add(422, "invalid_body");
        }
        if let Access::Roles(_) = self.access {
            add(401, "unauthenticated");
            add(403, "forbidden");
            if self.method != "GET" {
                add(403, "csrf");
            }
        }
        // A browser's request from another site that would change
        // something (see `security::same_origin`).
        if self.method != "GET" {
            add(403, "cross_site");
        }
        // Every request counts against its caller's requests in flight,
        // and has a deadline (`--request-timeout`).
        add(408, "request_timeout");
        add(429, "too_many_requests");
        for &(status, code) in self.own_errors {
            add(status, code);
        }
        if self.uses_backends {
            add(500, "internal");
            add(503, "cache_unavailable");
            add(503, "database_unavailable");
        }
        errors
    }
}

const SERVICE: Access = Access::Roles(&["service"]);
const ADMIN: Access = Access::Roles(&["admin"]);
const ADMIN_SERVICE: Access = Access::Roles(&["admin", "service"]);
const SIGNED_IN: Access = Access::Roles(&["user", "admin", "service"]);
const PEOPLE: Access = Access::Roles(&["user", "admin"]);
/// Services on any namespace; users and admins on their own only.
const OWN_NAMESPACE: Access = Access::Roles(&["service", "user", "admin"]);

/// Errors of every `/keys/{key}` route.
const KEY_ERRORS: &[(u16, &str)] = &[(413, "key_too_long"), (422, "invalid_name")];
/// Errors of a write.
const WRITE_ERRORS: &[(u16, &str)] = &[
    (413, "key_too_long"),
    (413, "value_too_large"),
    (422, "invalid_name"),
    (422, "invalid_argument"),
    (507, "namespace_quota_exceeded"),
];
/// Errors of a read that answers values (bounded replies).
const READ_ERRORS: &[(u16, &str)] = &[
    (404, "miss"),
    (413, "key_too_long"),
    (413, "reply_too_large"),
    (422, "invalid_name"),
    (503, "busy"),
];
/// Errors of `incr` and `decr`.
const COUNTER_ERRORS: &[(u16, &str)] = &[
    (404, "key_not_found"),
    (409, "not_an_integer"),
    (413, "key_too_long"),
    (422, "invalid_name"),
];
/// Errors of a batch.
const BATCH_ERRORS: &[(u16, &str)] = &[
    (413, "batch_too_large"),
    (413, "key_too_long"),
    (422, "invalid"),
    (422, "invalid_name"),
];

macro_rules! keyspace_routes {
    ($prefix:literal, $id:literal, $access:expr) => {
        [
            RouteDoc::new(
                "GET",
                concat!($prefix, "/keys/{key}"),
                concat!($id, "_get"),
                "Get a value (404 `miss` when absent)",
                $access,
                &[ok("The value", BodyType::of::<KeyValue>())],
            )
            .fails(READ_ERRORS),
            RouteDoc::new(
                "PUT",
                concat!($prefix, "/keys/{key}"),
                concat!($id, "_set"),
                "Set a value",
                $access,
                &[ok("Stored", BodyType::of::<KeyStored>())],
            )
            .takes(BodyType::of::<ValueBody>(), r#"{"value":"text","ttl":300}"#)
            .fails(WRITE_ERRORS),
            RouteDoc::new(
                "DELETE",
                concat!($prefix, "/keys/{key}"),
                concat!($id, "_delete"),
                "Delete a key",
                $access,
                &[ok("Deleted, or was absent", BodyType::of::<KeyDeleted>())],
            )
            .fails(KEY_ERRORS),
            RouteDoc::new(
                "POST",
                concat!($prefix, "/keys/{key}/add"),
                concat!($id, "_add"),
                "Set only if absent",
                $access,
                &[ok("Added, or was present", BodyType::of::<KeyAdded>())],
            )
            .takes(BodyType::of::<ValueBody>(), r#"{"value":"0","ttl":"none"}"#)
            .fails(WRITE_ERRORS),
            RouteDoc::new(
                "POST",
                concat!($prefix, "/keys/{key}/incr"),
                concat!($id, "_incr"),
                "Increment an integer (404 when missing)",
                $access,
                &[ok("The new value", BodyType::of::<KeyCounter>())],
            )
            .takes(BodyType::of::<DeltaBody>(), r#"{"delta":1}"#)
            .fails(COUNTER_ERRORS),
            RouteDoc::new(
                "POST",
                concat!($prefix, "/keys/{key}/decr"),
                concat!($id, "_decr"),
                "Decrement an integer",
                $access,
                &[ok("The new value", BodyType::of::<KeyCounter>())],
            )
            .takes(BodyType::of::<DeltaBody>(), r#"{"delta":1}"#)
            .fails(COUNTER_ERRORS),
            RouteDoc::new(
                "POST",
                concat!($prefix, "/keys/{key}/touch"),
                concat!($id, "_touch"),
                "Set a key's expiry",
                $access,
                &[ok("Touched, or absent", BodyType::of::<KeyTouched>())],
            )
            .takes(BodyType::of::<TouchBody>(), r#"{"ttl":60}"#)
            .fails(KEY_ERRORS),
            RouteDoc::new(
                "POST",
                concat!($prefix, "/keys/{key}/persist"),
                concat!($id, "_persist"),
                "Remove a key's expiry",
                $access,
                &[ok("Persisted, or not", BodyType::of::<KeyPersisted>())],
            )
            .fails(KEY_ERRORS),
            RouteDoc::new(
                "GET",
                concat!($prefix, "/keys/{key}/ttl"),
                concat!($id, "_ttl"),
                "Time left",
                $access,
                &[ok("The key's expiry", BodyType::of::<KeyTtl>())],
            )
            .fails(KEY_ERRORS),
            RouteDoc::new(
                "GET",
                concat!($prefix, "/keys/{key}/exists"),
                concat!($id, "_exists"),
                "Whether a key exists",
                $access,
                &[ok("Whether it exists", BodyType::of::<KeyExists>())],
            )
            .fails(KEY_ERRORS),
            RouteDoc::new(
                "POST",
                concat!($prefix, "/get-many"),
                concat!($id, "_get_many"),
                "Get many values",
                $access,
                &[ok("The values", BodyType::of::<ManyValues>())],
            )
            .takes(BodyType::of::<KeysBody>(), r#"{"keys":["a","b"]}"#)
            .fails(&[
                (413, "batch_too_large"),
                (413, "key_too_long"),
                (413, "reply_too_large"),
                (422, "invalid"),
                (422, "invalid_name"),
                (503, "busy"),
            ]),
            RouteDoc::new(
                "POST",
                concat!($prefix, "/set-many"),
                concat!($id, "_set_many"),
                "Set many values atomically",
                $access,
                &[ok("Stored", BodyType::of::<ManyStored>())],
            )
            .takes(
                BodyType::of::<SetManyBody>(),
                r#"{"entries":[{"key":"a","value":"1"}],"ttl":60}"#,
            )
            .fails(&[
                (413, "batch_too_large"),
                (413, "key_too_long"),
                (413, "value_too_large"),
                (422, "invalid"),
                (422, "invalid_name"),
                (422, "invalid_argument"),
                (507, "namespace_quota_exceeded"),
            ]),
            RouteDoc::new(
                "POST",
                concat!($prefix, "/delete-many"),
                concat!($id, "_delete_many"),
                "Delete many keys",
                $access,
                &[ok("Deleted", BodyType::of::<ManyDeleted>())],
            )
            .takes(BodyType::of::<KeysBody>(), r#"{"keys":["a","b"]}"#)
            .fails(BATCH_ERRORS),
        ]
    };
}

const GLOBAL: [RouteDoc; 13] = keyspace_routes!("/api/v1/cache/global", "global", SERVICE);
const USER: [RouteDoc; 13] = keyspace_routes!("/api/v1/cache/users/{user}", "user", OWN_NAMESPACE);

const HEALTH: &[Answer] = &[
    ok("Every dependency answers", BodyType::of::<HealthReport>()),
    Answer {
        status: 503,
        description: "Some dependency is down (`failing` names them)",
        content: Content::Json(BodyType::of::<HealthReport>()),
        header: None,
    },
];

const OTHER: [RouteDoc; 16] = [
    RouteDoc::new(
        "GET",
        "/health",
        "health",
        "Reachability of Redis, the database and the component (503 naming what is down)",
        Access::Public,
        HEALTH,
    )
    .offline(),
    RouteDoc::new(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        ADMIN_SERVICE,
        &[Answer {
            status: 200,
            description: "Prometheus text exposition",
            content: Content::Prometheus,
            header: None,
        }],
    ),
    RouteDoc::new(
        "GET",
        "/api/v1/openapi.json",
        "openapi",
        "This document",
        Access::Public,
        &[Answer {
            status: 200,
            description: "The OpenAPI 3.1 document",
            content: Content::Document,
            header: None,
        }],
    )
    .offline(),
    RouteDoc::new(
        "POST",
        "/api/v1/session",
        "sign_in",
        "Sign in (sets the session cookie, returns the CSRF token)",
        Access::Public,
        &[ok_setting_cookie("Signed in", BodyType::of::<SignedIn>())],
    )
    .takes(
        BodyType::of::<LoginBody>(),
        r#"{"username":"alice","password":"..."}"#,
    )
    .fails(&[
        (400, "invalid_username"),
        (401, "bad_credentials"),
        (429, "rate_limited"),
        (503, "login_busy"),
    ]),
    RouteDoc::new(
        "DELETE",
        "/api/v1/session",
        "sign_out",
        "Sign out",
        SIGNED_IN,
        &[ok_setting_cookie("Signed out", BodyType::of::<SignedOut>())],
    ),
    RouteDoc::new(
        "GET",
        "/api/v1/me",
        "me",
        "The signed-in account, its cache flag and namespace version",
        SIGNED_IN,
        &[ok("The caller", BodyType::of::<Me>())],
    ),
    RouteDoc::new(
        "PUT",
        "/api/v1/me/cache",
        "set_my_cache",
        "Turn one's own cache on or off",
        PEOPLE,
        &[ok("The account, as changed", BodyType::of::<MeView>())],
    )
    .takes(BodyType::of::<CacheFlag>(), r#"{"enabled":false}"#),
    RouteDoc::new(
        "POST",
        "/api/v1/me/invalidate",
        "clear_my_cache",
        "Clear one's own cache",
        PEOPLE,
        &[ok("Cleared", BodyType::of::<Cleared>())],
    ),
    RouteDoc::new(
        "GET",
        "/api/v1/users",
        "list_users",
        "Users with flag and namespace version (query: search, page, per_page)",
        ADMIN,
        &[ok("A page of users", BodyType::of::<UsersPage>())],
    )
    .query(QueryDoc::of::<UsersQuery>())
    .fails(&[(422, "invalid")]),
    RouteDoc::new(
        "PUT",
        "/api/v1/users/{user}/cache",
        "set_user_cache",
        "Override a user's cache flag",
        ADMIN,
        &[ok("The flag as set", BodyType::of::<UserCacheFlag>())],
    )
    .takes(BodyType::of::<CacheFlag>(), r#"{"enabled":true}"#)
    .fails(&[(404, "not_found")]),
    RouteDoc::new(
        "POST",
        "/api/v1/users/{user}/invalidate",
        "invalidate_user",
        "Invalidate a user's namespace",
        ADMIN_SERVICE,
        &[ok("Invalidated", BodyType::of::<UserInvalidated>())],
    )
    .fails(&[(422, "invalid_name")]),
    RouteDoc::new(
        "POST",
        "/api/v1/tables/{table}/invalidate",
        "invalidate_table",
        "Invalidate a table's cached queries",
        ADMIN_SERVICE,
        &[ok("Invalidated", BodyType::of::<TableInvalidated>())],
    )
    .fails(&[(422, "invalid_name")]),
    RouteDoc::new(
        "POST",
        "/api/v1/invalidate-all",
        "invalidate_all",
        "Invalidate every namespace",
        ADMIN_SERVICE,
        &[ok("Invalidated", BodyType::of::<AllInvalidated>())],
    ),
    RouteDoc::new(
        "GET",
        "/api/v1/cache/users/{user}/version",
        "user_version",
        "A user's namespace version",
        OWN_NAMESPACE,
        &[ok("The version", BodyType::of::<UserVersion>())],
    )
    .fails(&[(422, "invalid_name")]),
    RouteDoc::new(
        "POST",
        "/api/v1/locks/{key}",
        "lock",
        "Take a lock (`owner` optional: a random token is returned)",
        SERVICE,
        &[ok(
            "Taken, or held by someone else",
            BodyType::of::<LockTaken>(),
        )],
    )
    .takes(BodyType::of::<LockBody>(), r#"{"timeout_ms":30000}"#)
    .fails(&[
        (413, "key_too_long"),
        (422, "invalid_name"),
        (422, "invalid_argument"),
    ]),
    RouteDoc::new(
        "DELETE",
        "/api/v1/locks/{key}",
        "unlock",
        "Release a lock (query: owner)",
        SERVICE,
        &[ok(
            "Released, or not held by that owner",
            BodyType::of::<LockReleased>(),
        )],
    )
    .query(QueryDoc::of::<UnlockQuery>())
    .fails(&[
        (413, "key_too_long"),
        (422, "invalid_name"),
        (422, "invalid_argument"),
    ]),
];

/// Every route the server serves under `/api/v1`, `/health` and `/metrics`.
pub fn routes() -> impl Iterator<Item = &'static RouteDoc> {
    OTHER.iter().chain(GLOBAL.iter()).chain(USER.iter())
}

/// The schema of `ttl` (`nscache::Expiry` on the wire): a number of seconds,
/// `"none"` or `"default"`. The library does not know about OpenAPI, so its
/// schema is written here.
#[derive(Debug, Clone, Copy)]
pub struct TtlSchema;

impl PartialSchema for TtlSchema {
    fn schema() -> RefOr<Schema> {
        let seconds = ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0))
            .description(Some("Seconds (fractions allowed; 0 expires at once)"));
        let word = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["none", "default"]))
            .description(Some(
                "`none`: never expires; `default`: the configured default",
            ));
        OneOfBuilder::new()
            .item(seconds)
            .item(word)
            .description(Some(
                "Expiry: seconds, `\"none\"` for no expiry or `\"default\"`",
            ))
            .into()
    }
}

impl ToSchema for TtlSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Ttl")
    }
}

/// The table's method names (a name it does not use documents TRACE, which
/// the test walking the table would catch).
fn http_method(method: &str) -> HttpMethod {
    match method {
        "GET" => HttpMethod::Get,
        "PUT" => HttpMethod::Put,
        "POST" => HttpMethod::Post,
        "DELETE" => HttpMethod::Delete,
        "PATCH" => HttpMethod::Patch,
        "HEAD" => HttpMethod::Head,
        "OPTIONS" => HttpMethod::Options,
        _ => HttpMethod::Trace,
    }
}

fn path_param(name: &str) -> Parameter {
    let description = match name {
        "user" => "A user's namespace id",
        "key" => "The key (percent-encoded)",
        "table" => "A table name",
        _ => "A name",
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(String::schema()))
        .build()
}

fn json_content(schema: impl Into<RefOr<Schema>>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn answer(answer: &Answer, schemas: &mut Schemas) -> ResponseBuilder {
    let response = ResponseBuilder::new().description(answer.description);
    let response = match answer.content {
        Content::Json(body) => {
            (body.gather)(schemas);
            response.content("application/json", json_content(body.reference()))
        }
        Content::Prometheus => response.content("text/plain", json_content(String::schema())),
        Content::Document => response.content(
            "application/json",
            json_content(ObjectBuilder::new().schema_type(Type::Object)),
        ),
    };
    match answer.header {
        Some((name, description)) => response.header(
            name,
            HeaderBuilder::new()
                .schema(Some(String::schema()))
                .description(Some(description))
                .build(),
        ),
        None => response,
    }
}

fn failure(status: u16, codes: &[&str]) -> ResponseBuilder {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let codes: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    let response = ResponseBuilder::new()
        .description(format!("{reason}: {}", codes.join(", ")))
        .content(
            "application/json",
            json_content(Ref::from_schema_name(ErrorBody::name())),
        );
    if status == 429 || status == 503 {
        response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(u64::schema()))
                .description(Some("Seconds to wait (429; 503 `busy` and `login_busy`)"))
                .build(),
        )
    } else {
        response
    }
}

fn responses(route: &RouteDoc, schemas: &mut Schemas) -> Responses {
    let mut responses = Responses::new();
    for a in route.answers {
        responses
            .responses
            .insert(a.status.to_string(), answer(a, schemas).build().into());
    }
    for (status, codes) in route.errors() {
        responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| failure(status, &codes).build().into());
    }
    responses
}

fn security(access: Access) -> Vec<SecurityRequirement> {
    match access {
        Access::Public => Vec::new(),
        Access::Roles(_) => vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("session", Vec::<String>::new()),
        ],
    }
}

fn operation(route: &RouteDoc, schemas: &mut Schemas) -> Operation {
    let roles = match route.access {
        Access::Public => "anyone".to_owned(),
        Access::Roles(roles) if roles.contains(&"user") && route.path.contains("{user}") => {
            format!(
                "{} (users and admins: their own namespace only)",
                roles.join(", ")
            )
        }
        Access::Roles(roles) => roles.join(", "),
    };
    let mut parameters: Vec<Parameter> = route.path_params().map(path_param).collect();
    if let Some(QueryDoc(query)) = route.query {
        parameters.extend(query());
    }
    let request_body = route.request.map(|request| {
        (request.body.gather)(schemas);
        let example = serde_json::from_str(request.example).ok();
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(request.body.reference()))
                    .example(example)
                    .build(),
            )
            .build()
    });
    OperationBuilder::new()
        .operation_id(Some(route.operation_id))
        .summary(Some(route.summary))
        .description(Some(format!("Allowed: {roles}.")))
        .parameters(Some(parameters))
        .request_body(request_body)
        .responses(responses(route, schemas))
        .securities(Some(security(route.access)))
        .build()
}

/// The OpenAPI 3.1 document.
pub fn document() -> OpenApi {
    let mut schemas = Schemas::new();
    gather::<ErrorBody>(&mut schemas);
    let mut paths = Paths::new();
    for route in routes() {
        let operation = operation(route, &mut schemas);
        paths.add_path_operation(route.path, vec![http_method(route.method)], operation);
    }
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some("API token (`nscache token create`)"))
        .build();
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme("bearer", SecurityScheme::Http(bearer))
        .security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie; named `__Host-nscache_session` when the server runs \
                 with `--secure-cookies`. A browser's request that changes state from \
                 another site (`Sec-Fetch-Site`, `Origin`) is refused with 403 `cross_site`.",
            ))),
        )
        .build();
    let info = InfoBuilder::new()
        .title("nscache")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Per-user namespaced cache with O(1) invalidation. Cookie sessions must send \
             their CSRF token in `X-CSRF-Token` on requests that change state. Every error \
             is `{\"error\": {\"code\", \"message\"}}`; a path not listed here answers 404 \
             `no_route`, a method not listed for a path 405 `method_not_allowed`.",
        ))
        .build();
    OpenApiBuilder::new()
        .info(info)
        .paths(paths)
        .components(Some(components))
        .build()
}
