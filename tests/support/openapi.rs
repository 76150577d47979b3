//! Every API response the tests receive, checked against the server's OpenAPI
//! document ([`check_response`]; [`TestServer::send`] calls it on every
//! request to `/api/...`, `/health` and `/metrics`): the route and method
//! must be documented, the status documented for that operation, the content
//! type among the documented ones, and a JSON body must match the documented
//! schema. Undocumented paths and methods must get the fallback answers the
//! document's description promises (404 `no_route`, 405
//! `method_not_allowed`).
//!
//! The schema check ([`check_value`]) is a small validator for the subset of
//! JSON Schema the document uses: `type` (with `nullable`), `properties`,
//! `required`, `additionalProperties`, `items`, `oneOf`, `anyOf`, `allOf`,
//! `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum` and local `$ref`s. Any other assertion keyword is
//! reported as a mismatch, so a construct the validator does not know fails
//! loudly instead of passing silently. It is stricter than JSON Schema in
//! one way: an object whose schema lists `properties` may carry no other
//! property unless `additionalProperties` allows it, since a field the
//! document does not mention is a documentation bug.
//!
//! [`TestServer::send`]: crate::server::TestServer::send

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The server's OpenAPI document, as JSON.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::to_value(nscache_server::http::openapi::document())
            .expect("the OpenAPI document serializes to JSON")
    })
}

/// A response as the server sent it.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// The request's method (`GET`, ...).
    pub method: &'a str,
    /// The request's path, with its query if any.
    pub path: &'a str,
    /// HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// Whether `path` (query allowed) belongs to the API the document describes,
/// rather than to the admin UI.
pub fn is_api(path: &str) -> bool {
    let path = path_only(path);
    path.starts_with("/api/") || path == "/health" || path == "/metrics"
}

/// Panic, naming the route, the status and the mismatch, unless `response`
/// is what the document says.
pub fn assert_documented(response: &Response<'_>) {
    if let Err(mismatch) = check_response(document(), response) {
        let body = String::from_utf8_lossy(response.body);
        let body: String = body.chars().take(400).collect();
        panic!(
            "{} {} answered {}, which the OpenAPI document does not allow: \
             {mismatch}\nbody: {body}",
            response.method, response.path, response.status
        );
    }
}

fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// The documented path template `path` falls under: the one with the most
/// literal segments, as the router prefers them.
pub fn route_template<'d>(document: &'d Value, path: &str) -> Option<&'d str> {
    let segments: Vec<&str> = path_only(path).split('/').collect();
    document["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template)
}

/// Check `response` against `document`: `Ok`, or what does not match.
pub fn check_response(document: &Value, response: &Response<'_>) -> Result<(), String> {
    let Some(template) = route_template(document, response.path) else {
        return check_fallback(document, response, 404, "no_route")
            .map_err(|e| format!("the path is not documented, and {e}"));
    };
    let operation = &document["paths"][template][response.method.to_lowercase()];
    if !operation.is_object() {
        return check_fallback(document, response, 405, "method_not_allowed")
            .map_err(|e| format!("{template} documents no {}, and {e}", response.method));
    }
    let route = format!("{} {template}", response.method);
    let responses = &operation["responses"];
    let status = response.status.to_string();
    let range = format!("{}XX", response.status / 100);
    let documented = [status.as_str(), range.as_str(), "default"]
        .into_iter()
        .find_map(|key| responses.get(key))
        .ok_or_else(|| {
            let known: Vec<&String> = responses
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            format!("{route}: status {status} is not documented (documented: {known:?})")
        })?;
    let documented = resolve(document, documented).map_err(|e| format!("{route}: {e}"))?;
    check_content(document, documented, response).map_err(|e| format!("{route} {status}: {e}"))
}

/// The fallback answers of the router: `status` with an error `code`.
fn check_fallback(
    document: &Value,
    response: &Response<'_>,
    status: u16,
    code: &str,
) -> Result<(), String> {
    if response.status != status {
        return Err(format!("the answer is {}, not {status}", response.status));
    }
    let body = json_body(response)?;
    let error = document
        .pointer("/components/schemas/Error")
        .ok_or("the document has no Error schema")?;
    check_value(document, error, &body)?;
    match body["error"]["code"].as_str() {
        Some(c) if c == code => Ok(()),
        other => Err(format!("the error code is {other:?}, not {code:?}")),
    }
}

fn json_body(response: &Response<'_>) -> Result<Value, String> {
    let media = media_type(response.content_type);
    if media.as_deref() != Some("application/json") {
        return Err(format!("the body is {media:?}, not JSON"));
    }
    serde_json::from_slice(response.body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// The media type of a `Content-Type`, without parameters, lowercased.
fn media_type(content_type: Option<&str>) -> Option<String> {
    let essence = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

/// Check the body against a documented response's `content`.
fn check_content(
    document: &Value,
    documented: &Value,
    response: &Response<'_>,
) -> Result<(), String> {
    let content = documented.get("content").and_then(Value::as_object);
    let Some(content) = content.filter(|c| !c.is_empty()) else {
        return match response.body.is_empty() {
            true => Ok(()),
            false => Err("a body where none is documented".to_owned()),
        };
    };
    let media = media_type(response.content_type)
        .ok_or_else(|| "no Content-Type, though a body is documented".to_owned())?;
    let (_, media_doc) = content
        .iter()
        .find(|(key, _)| media_type(Some(key)).as_deref() == Some(media.as_str()))
        .ok_or_else(|| {
            let known: Vec<&String> = content.keys().collect();
            format!("content type {media} is not documented (documented: {known:?})")
        })?;
    let Some(schema) = media_doc.get("schema") else {
        return Ok(());
    };
    if media == "application/json" || media.ends_with("+json") {
        let body: Value = serde_json::from_slice(response.body)
            .map_err(|e| format!("the body is not JSON: {e}"))?;
        check_value(document, schema, &body)
    } else {
        let text = std::str::from_utf8(response.body)
            .map_err(|_| "the body is not UTF-8 text".to_owned())?;
        check_value(document, schema, &Value::String(text.to_owned()))
    }
}

/// Follow a `$ref`, if `item` is one.
fn resolve<'d>(document: &'d Value, item: &'d Value) -> Result<&'d Value, String> {
    match item.get("$ref").and_then(Value::as_str) {
        Some(reference) => follow(document, reference),
        None => Ok(item),
    }
}

/// What a local `$ref` (`#/components/...`) points at.
fn follow<'d>(document: &'d Value, reference: &str) -> Result<&'d Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| format!("{reference} is not a local reference"))?;
    document
        .pointer(pointer)
        .ok_or_else(|| format!("{reference} points at nothing"))
}

/// Check `value` against `schema` (whose `$ref`s point into `document`):
/// `Ok`, or every mismatch, one a line, each naming where it is (`$` is the
/// value itself).
pub fn check_value(document: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let mismatches = Checker { document }.check(schema, value, "$", true);
    match mismatches.is_empty() {
        true => Ok(()),
        false => Err(mismatches.join("\n")),
    }
}

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "format",
    "example",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "contentMediaType",
    "contentEncoding",
    "nullable",
];

struct Checker<'d> {
    document: &'d Value,
}

impl<'d> Checker<'d> {
    /// Every mismatch of `value` at `at` against `schema`; `strict`: undeclared
    /// properties are mismatches too.
    fn check(&self, schema: &'d Value, value: &Value, at: &str, strict: bool) -> Vec<String> {
        let schema = match schema {
            Value::Bool(true) => return Vec::new(),
            Value::Bool(false) => return vec![format!("{at}: nothing is allowed here")],
            Value::Object(schema) => schema,
            other => return vec![format!("{at}: the schema {other} is not a schema")],
        };
        let mut mismatches = Vec::new();
        for (keyword, argument) in schema {
            let found = self.keyword(schema, keyword, argument, value, at, strict);
            mismatches.extend(found);
        }
        if strict {
            mismatches.extend(self.undeclared(schema, value, at));
        }
        mismatches
    }

    fn keyword(
        &self,
        schema: &'d Map<String, Value>,
        keyword: &str,
        argument: &'d Value,
        value: &Value,
        at: &str,
        strict: bool,
    ) -> Vec<String> {
        match keyword {
            "$ref" => match argument.as_str().map(|r| follow(self.document, r)) {
                Some(Ok(target)) => self.check(target, value, at, strict),
                Some(Err(e)) => vec![format!("{at}: {e}")],
                None => vec![format!("{at}: the $ref {argument} is not a string")],
            },
            "type" => self.check_type(schema, argument, value, at),
            "enum" => match argument.as_array() {
                Some(allowed) if allowed.contains(value) => Vec::new(),
                _ => vec![format!("{at}: {} is not one of {argument}", short(value))],
            },
            "const" if argument == value => Vec::new(),
            "const" => vec![format!("{at}: {} is not {argument}", short(value))],
            "properties" => self.check_properties(argument, value, at, strict),
            "required" => check_required(argument, value, at),
            "additionalProperties" => self.check_additional(schema, argument, value, at, strict),
            "items" => match value.as_array() {
                Some(items) => items
                    .iter()
                    .enumerate()
                    .flat_map(|(i, item)| self.check(argument, item, &format!("{at}[{i}]"), strict))
                    .collect(),
                None => Vec::new(),
            },
            "oneOf" | "anyOf" => self.check_alternatives(keyword, argument, value, at, strict),
            "allOf" => argument
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|part| self.check(part, value, at, false))
                .collect(),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                check_bound(keyword, argument, value, at)
            }
            _ if ANNOTATIONS.contains(&keyword) => Vec::new(),
            _ => vec![format!(
                "{at}: the checker does not know the keyword {keyword:?}"
            )],
        }
    }

    fn check_type(
        &self,
        schema: &Map<String, Value>,
        argument: &Value,
        value: &Value,
        at: &str,
    ) -> Vec<String> {
        let mut types: Vec<&str> = match argument {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return vec![format!("{at}: the type {argument} is not a type")],
        };
        if schema.get("nullable") == Some(&Value::Bool(true)) {
            types.push("null");
        }
        match types.iter().any(|t| has_type(value, t)) {
            true => Vec::new(),
            false => vec![format!(
                "{at}: expected {}, found {}",
                types.join(" or "),
                short(value)
            )],
        }
    }

    fn check_properties(
        &self,
        properties: &'d Value,
        value: &Value,
        at: &str,
        strict: bool,
    ) -> Vec<String> {
        let (Some(properties), Some(object)) = (properties.as_object(), value.as_object()) else {
            return Vec::new();
        };
        properties
            .iter()
            .filter_map(|(name, schema)| Some((name, schema, object.get(name)?)))
            .flat_map(|(name, schema, field)| {
                self.check(schema, field, &format!("{at}.{name}"), strict)
            })
            .collect()
    }

    fn check_additional(
        &self,
        schema: &Map<String, Value>,
        additional: &'d Value,
        value: &Value,
        at: &str,
        strict: bool,
    ) -> Vec<String> {
        let Some(object) = value.as_object() else {
            return Vec::new();
        };
        let declared = schema.get("properties").and_then(Value::as_object);
        object
            .iter()
            .filter(|(name, _)| !declared.is_some_and(|d| d.contains_key(*name)))
            .flat_map(|(name, field)| match additional {
                Value::Bool(false) => vec![format!("{at}: property {name:?} is not allowed")],
                other => self.check(other, field, &format!("{at}.{name}"), strict),
            })
            .collect()
    }

    fn check_alternatives(
        &self,
        keyword: &str,
        alternatives: &'d Value,
        value: &Value,
        at: &str,
        strict: bool,
    ) -> Vec<String> {
        let Some(alternatives) = alternatives.as_array() else {
            return vec![format!("{at}: {keyword} is not a list")];
        };
        let outcomes: Vec<Vec<String>> = alternatives
            .iter()
            .map(|alternative| self.check(alternative, value, at, strict))
            .collect();
        let matching = outcomes.iter().filter(|m| m.is_empty()).count();
        match (keyword, matching) {
            ("oneOf", 1) => Vec::new(),
            ("anyOf", n) if n > 0 => Vec::new(),
            (_, 0) => {
                let why: Vec<String> = outcomes
                    .iter()
                    .enumerate()
                    .map(|(i, m)| format!("  [{i}] {}", m.join("; ")))
                    .collect();
                vec![format!(
                    "{at}: {} matches none of {keyword}:\n{}",
                    short(value),
                    why.join("\n")
                )]
            }
            (_, n) => vec![format!(
                "{at}: {} matches {n} of oneOf, not 1",
                short(value)
            )],
        }
    }

    /// In strict mode: the properties of `value` that `schema` does not
    /// declare, when it declares any (through `allOf` too) and says nothing
    /// of others.
    fn undeclared(&self, schema: &Map<String, Value>, value: &Value, at: &str) -> Vec<String> {
        let Some(object) = value.as_object() else {
            return Vec::new();
        };
        if schema.contains_key("additionalProperties") {
            return Vec::new();
        }
        let mut declared: Vec<&str> = Vec::new();
        let mut any_declared = false;
        let parts = schema.get("allOf").and_then(Value::as_array);
        let resolved: Vec<&Value> = parts
            .into_iter()
            .flatten()
            .filter_map(|part| resolve(self.document, part).ok())
            .collect();
        let own = schema.get("properties");
        for properties in own
            .into_iter()
            .chain(resolved.iter().filter_map(|p| p.get("properties")))
        {
            if let Some(properties) = properties.as_object() {
                any_declared = true;
                declared.extend(properties.keys().map(String::as_str));
            }
        }
        if !any_declared {
            return Vec::new();
        }
        object
            .keys()
            .filter(|name| !declared.contains(&name.as_str()))
            .map(|name| format!("{at}: property {name:?} is not documented"))
            .collect()
    }
}

fn check_required(required: &Value, value: &Value, at: &str) -> Vec<String> {
    let Some(object) = value.as_object() else {
        return Vec::new();
    };
    required
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| !object.contains_key(*name))
        .map(|name| format!("{at}: required property {name:?} is missing"))
        .collect()
}

fn check_bound(keyword: &str, bound: &Value, value: &Value, at: &str) -> Vec<String> {
    let (Some(bound), Some(number)) = (bound.as_f64(), value.as_f64()) else {
        return Vec::new();
    };
    let within = match keyword {
        "minimum" => number >= bound,
        "maximum" => number <= bound,
        "exclusiveMinimum" => number > bound,
        _ => number < bound,
    };
    match within {
        true => Vec::new(),
        false => vec![format!("{at}: {number} is outside {keyword} {bound}")],
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// A value for a message: at most 80 characters of its JSON.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({ "components": { "schemas": {
            "Value": { "oneOf": [
                { "type": "object", "required": ["value"],
                  "properties": { "value": { "type": "string" } } },
                { "type": "object", "required": ["value_base64"],
                  "properties": { "value_base64": { "type": "string" } } }
            ] },
            "Entry": { "type": "object", "required": ["key", "value"], "properties": {
                "key": { "type": "string" },
                "value": { "$ref": "#/components/schemas/Value" },
                "ttl": { "type": ["number", "null"], "minimum": 0 },
                "state": { "type": "string", "enum": ["missing", "expires"] }
            } }
        } } })
    }

    fn check(value: Value) -> Result<(), String> {
        let doc = doc();
        let schema = json!({ "$ref": "#/components/schemas/Entry" });
        check_value(&doc, &schema, &value)
    }

    #[test]
    fn a_matching_value_passes() {
        check(json!({ "key": "k", "value": { "value": "v" }, "ttl": null })).unwrap();
        check(json!({ "key": "k", "value": { "value_base64": "eA==" }, "ttl": 1.5 })).unwrap();
    }

    #[test]
    fn every_kind_of_mismatch_is_caught_and_located() {
        let cases = [
            (
                json!({ "key": 1, "value": { "value": "v" } }),
                "$.key: expected string",
            ),
            (
                json!({ "value": { "value": "v" } }),
                "required property \"key\"",
            ),
            (
                json!({ "key": "k", "value": { "value": 5 } }),
                "$.value: {\"value\":5} matches none",
            ),
            (json!({ "key": "k", "value": {} }), "matches none of oneOf"),
            (
                json!({ "key": "k", "value": { "value": "v" }, "ttl": -1 }),
                "outside minimum",
            ),
            (
                json!({ "key": "k", "value": { "value": "v" }, "ttl": "x" }),
                "$.ttl: expected",
            ),
            (
                json!({ "key": "k", "value": { "value": "v" }, "state": "x" }),
                "is not one of",
            ),
            (
                json!({ "key": "k", "value": { "value": "v" }, "colour": 1 }),
                "\"colour\" is not",
            ),
            (
                json!({ "key": "k", "value": { "value": "v", "value_base64": "" } }),
                "matches none of oneOf",
            ),
        ];
        for (value, expected) in cases {
            let mismatch = check(value.clone()).expect_err(&value.to_string());
            assert!(mismatch.contains(expected), "{value}: {mismatch}");
        }
    }

    #[test]
    fn an_unknown_keyword_is_a_mismatch_not_a_pass() {
        let schema = json!({ "type": "string", "pattern": "^a" });
        let mismatch = check_value(&json!({}), &schema, &json!("b")).unwrap_err();
        assert!(mismatch.contains("\"pattern\""), "{mismatch}");
    }

    #[test]
    fn paths_find_their_most_literal_template() {
        let doc = json!({ "paths": {
            "/a/{x}": {}, "/a/b": {}, "/a/{x}/c": {}
        } });
        assert_eq!(route_template(&doc, "/a/b"), Some("/a/b"));
        assert_eq!(route_template(&doc, "/a/z?q=1"), Some("/a/{x}"));
        assert_eq!(route_template(&doc, "/a/z/c"), Some("/a/{x}/c"));
        assert_eq!(route_template(&doc, "/a//c"), None);
        assert_eq!(route_template(&doc, "/b"), None);
    }
}
