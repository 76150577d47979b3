//! The route table ([`ROUTES`]) and the OpenAPI 3.1 document built from it.
//! The router in `mod.rs` must serve exactly these routes; a test walks the
//! table to check every route answers and every role gets what it says.

use serde_json::{Map, Value, json};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// These roles (`"user"` here means: only on their own namespace when the
    /// route names a user).
    Roles(&'static [&'static str]),
}

/// One documented route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// HTTP method.
    pub method: &'static str,
    /// Path, with `{param}`s.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Example request body, if it takes one.
    pub body: Option<&'static str>,
}

const SERVICE: Access = Access::Roles(&["service"]);
const ADMIN: Access = Access::Roles(&["admin"]);
const ADMIN_SERVICE: Access = Access::Roles(&["admin", "service"]);
const SIGNED_IN: Access = Access::Roles(&["user", "admin", "service"]);
const PEOPLE: Access = Access::Roles(&["user", "admin"]);
/// Services on any namespace; users and admins on their own only.
const OWN_NAMESPACE: Access = Access::Roles(&["service", "user", "admin"]);

macro_rules! keyspace_routes {
    ($prefix:literal, $access:expr) => {
        [
            RouteDoc {
                method: "GET",
                path: concat!($prefix, "/keys/{key}"),
                summary: "Get a value (404 `miss` when absent)",
                access: $access,
                body: None,
            },
            RouteDoc {
                method: "PUT",
                path: concat!($prefix, "/keys/{key}"),
                summary: "Set a value",
                access: $access,
                body: Some(r#"{"value":"text","ttl":300}"#),
            },
            RouteDoc {
                method: "DELETE",
                path: concat!($prefix, "/keys/{key}"),
                summary: "Delete a key",
                access: $access,
                body: None,
            },
            RouteDoc {
                method: "POST",
                path: concat!($prefix, "/keys/{key}/add"),
                summary: "Set only if absent",
                access: $access,
                body: Some(r#"{"value":"0","ttl":"none"}"#),
            },
            RouteDoc {
                method: "POST",
                path: concat!($prefix, "/keys/{key}/incr"),
                summary: "Increment an integer (404 when missing)",
                access: $access,
                body: Some(r#"{"delta":1}"#),
            },
            RouteDoc {
                method: "POST",
                path: concat!($prefix, "/keys/{key}/decr"),
                summary: "Decrement an integer",
                access: $access,
                body: Some(r#"{"delta":1}"#),
            },
            RouteDoc {
                method: "POST",
                path: concat!($prefix, "/keys/{key}/touch"),
                summary: "Set a key's expiry",
                access: $access,
                body: Some(r#"{"ttl":60}"#),
            },
            RouteDoc {
                method: "POST",
                path: concat!($prefix, "/keys/{key}/persist"),
                summary: "Remove a key's expiry",
                access: $access,
                body: None,
            },
            RouteDoc {
                method: "GET",
                path: concat!($prefix, "/keys/{key}/ttl"),
                summary: "Time left",
                access: $access,
                body: None,
            },
            RouteDoc {
                method: "GET",
                path: concat!($prefix, "/keys/{key}/exists"),
                summary: "Whether a key exists",
                access: $access,
                body: None,
            },
            RouteDoc {
                method: "POST",
                path: concat!($prefix, "/get-many"),
                summary: "Get many values",
                access: $access,
                body: Some(r#"{"keys":["a","b"]}"#),
            },
            RouteDoc {
                method: "POST",
                path: concat!($prefix, "/set-many"),
                summary: "Set many values atomically",
                access: $access,
                body: Some(r#"{"entries":[{"key":"a","value":"1"}],"ttl":60}"#),
            },
            RouteDoc {
                method: "POST",
                path: concat!($prefix, "/delete-many"),
                summary: "Delete many keys",
                access: $access,
                body: Some(r#"{"keys":["a","b"]}"#),
            },
        ]
    };
}

const GLOBAL: [RouteDoc; 13] = keyspace_routes!("/api/v1/cache/global", SERVICE);
const USER: [RouteDoc; 13] = keyspace_routes!("/api/v1/cache/users/{user}", OWN_NAMESPACE);

const OTHER: [RouteDoc; 16] = [
    RouteDoc {
        method: "GET",
        path: "/health",
        summary: "Reachability of Redis, the database and the component (503 naming what is down)",
        access: Access::Public,
        body: None,
    },
    RouteDoc {
        method: "GET",
        path: "/metrics",
        summary: "Prometheus metrics",
        access: ADMIN_SERVICE,
        body: None,
    },
    RouteDoc {
        method: "GET",
        path: "/api/v1/openapi.json",
        summary: "This document",
        access: Access::Public,
        body: None,
    },
    RouteDoc {
        method: "POST",
        path: "/api/v1/session",
        summary: "Sign in (sets the session cookie, returns the CSRF token)",
        access: Access::Public,
        body: Some(r#"{"username":"alice","password":"..."}"#),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/v1/session",
        summary: "Sign out",
        access: SIGNED_IN,
        body: None,
    },
    RouteDoc {
        method: "GET",
        path: "/api/v1/me",
        summary: "The signed-in account, its cache flag and namespace version",
        access: SIGNED_IN,
        body: None,
    },
    RouteDoc {
        method: "PUT",
        path: "/api/v1/me/cache",
        summary: "Turn one's own cache on or off",
        access: PEOPLE,
        body: Some(r#"{"enabled":false}"#),
    },
    RouteDoc {
        method: "POST",
        path: "/api/v1/me/invalidate",
        summary: "Clear one's own cache",
        access: PEOPLE,
        body: None,
    },
    RouteDoc {
        method: "GET",
        path: "/api/v1/users",
        summary: "Users with flag and namespace version (query: search, page, per_page)",
        access: ADMIN,
        body: None,
    },
    RouteDoc {
        method: "PUT",
        path: "/api/v1/users/{user}/cache",
        summary: "Override a user's cache flag",
        access: ADMIN,
        body: Some(r#"{"enabled":true}"#),
    },
    RouteDoc {
        method: "POST",
        path: "/api/v1/users/{user}/invalidate",
        summary: "Invalidate a user's namespace",
        access: ADMIN_SERVICE,
        body: None,
    },
    RouteDoc {
        method: "POST",
        path: "/api/v1/tables/{table}/invalidate",
        summary: "Invalidate a table's cached queries",
        access: ADMIN_SERVICE,
        body: None,
    },
    RouteDoc {
        method: "POST",
        path: "/api/v1/invalidate-all",
        summary: "Invalidate every namespace",
        access: ADMIN_SERVICE,
        body: None,
    },
    RouteDoc {
        method: "GET",
        path: "/api/v1/cache/users/{user}/version",
        summary: "A user's namespace version",
        access: OWN_NAMESPACE,
        body: None,
    },
    RouteDoc {
        method: "POST",
        path: "/api/v1/locks/{key}",
        summary: "Take a lock (`owner` optional: a random token is returned)",
        access: SERVICE,
        body: Some(r#"{"timeout_ms":30000}"#),
    },
    RouteDoc {
        method: "DELETE",
        path: "/api/v1/locks/{key}",
        summary: "Release a lock (query: owner)",
        access: SERVICE,
        body: None,
    },
];

/// Every route the server serves under `/api/v1`, `/health` and `/metrics`.
pub fn routes() -> impl Iterator<Item = &'static RouteDoc> {
    OTHER.iter().chain(GLOBAL.iter()).chain(USER.iter())
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in routes() {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let security = match r.access {
            Access::Public => json!([]),
            Access::Roles(_) => json!([{ "bearer": [] }, { "session": [] }]),
        };
        let roles = match r.access {
            Access::Public => "anyone".to_owned(),
            Access::Roles(roles) => roles.join(", "),
        };
        let mut op = json!({
            "summary": r.summary,
            "description": format!("Allowed: {roles}."),
            "parameters": params,
            "security": security,
            "responses": {
                "200": { "description": "OK", "content": { "application/json": {} } },
                "4XX": { "description": "`{\"error\": {\"code\", \"message\"}}`", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                "503": { "description": "A dependency is down", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        if let Some(example) = r.body {
            let example: Value =
                serde_json::from_str(example).expect("route table examples are JSON");
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "example": example } } });
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "nscache", "version": env!("CARGO_PKG_VERSION"), "description": "Per-user namespaced cache with O(1) invalidation. Cookie sessions must send their CSRF token in `X-CSRF-Token` on requests that change state." },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "API token (`nscache token create`)" },
                "session": { "type": "apiKey", "in": "cookie", "name": "nscache_session" }
            },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": { "code": { "type": "string" }, "message": { "type": "string" } }, "required": ["code", "message"] } } }
            }
        }
    })
}
