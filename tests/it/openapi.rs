//! `GET /openapi.json` and `GET /docs` (issue 7): the document lists every native route
//! (and no route the daemon does not serve), says the truth about authentication, and
//! Swagger UI is served from the binary. Regression tests of what the API fuzzing
//! (`.ci/fuzz-api`, schemathesis) found are at the end.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::{token_toml, Client, Request, Server};

const ADMIN: &str = "tok-openapi-admin-0123456789";
const READ: &str = "tok-openapi-read-0123456789";

/// A daemon with credentials: an admin token (the helpers' default) and a read-only one.
fn guarded() -> Server {
    let toml = [
        token_toml("admin", ADMIN, &["admin"], None),
        token_toml("reader", READ, &["inventory:read"], None),
    ]
    .concat();
    Server::start_with_token(&toml, Some(ADMIN))
}

fn document(client: &Client) -> Value {
    let res = client.with_token(None).get("/openapi.json");
    res.expect(200);
    assert!(
        res.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "content-type {:?}",
        res.header("content-type")
    );
    res.json()
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

/// Every (METHOD, path) the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// The routes the app registers from its route tables: the native API and the
/// probes/admin routes, the outbound sinks' admin routes.
fn registered() -> BTreeSet<(String, String)> {
    stockd::http::native::NATIVE_ROUTES
        .iter()
        .chain(stockd::http::health::HEALTH_ROUTES)
        .chain(stockd::http::sinks::SINK_ROUTES)
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

/// Every `route("PATH", web::METHOD()…` in `src/http/*.rs`: how the modules without a route
/// table register. Only the native API, probes, admin and metrics (the dialects have their own
/// documents, and `/openapi.json` and `/docs` describe the rest).
fn routes_in_sources() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/http") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("route(\"") {
            rest = &rest[i + "route(\"".len()..];
            let Some(end) = rest.find('"') else { break };
            let route = rest[..end].to_string();
            let method = rest[end..]
                .find("web::")
                .map(|m| &rest[end + m + "web::".len()..])
                .and_then(|t| t.split('(').next())
                .unwrap_or_default()
                .to_ascii_uppercase();
            let ours = route.starts_with("/api/")
                || route.starts_with("/admin/")
                || ["/healthz", "/livez", "/readyz", "/metrics"].contains(&route.as_str());
            if ours {
                found.insert((method, route));
            }
        }
    }
    found
}

/// `path` with every `{param}` replaced by `value`.
fn concrete(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push_str(value);
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// An empty JSON object as the body of the methods that take one.
fn with_body(req: Request<'_>) -> Request<'_> {
    match req.method {
        "POST" | "PUT" | "PATCH" => req.body("{}"),
        _ => req,
    }
}

/// Whether the daemon has a route for this request: a missing path is 404 `route_not_found`
/// with the detail `no route for …` (a missing snapshot has the code, not the detail), and a
/// method the path does not take is 405 `method_not_allowed`.
fn is_routed(client: &Client, method: &str, path: &str) -> bool {
    let res = client.raw(with_body(client.request(method, path)));
    !(res.status == 404 && res.body.contains("no route for")) && res.status != 405
}

#[test]
fn every_native_route_is_in_the_document() {
    let server = Server::open();
    let documented = operations(&document(&server));
    let missing: Vec<_> = registered().difference(&documented).cloned().collect();
    assert!(missing.is_empty(), "routes missing from /openapi.json: {missing:?}");
    // Routes of the modules that register one by one.
    let scanned = routes_in_sources();
    assert!(
        scanned.contains(&("GET".to_string(), "/metrics".to_string())),
        "the source scan finds nothing: {scanned:?}"
    );
    let missing: Vec<_> = scanned.difference(&documented).cloned().collect();
    assert!(missing.is_empty(), "routes missing from /openapi.json: {missing:?}");
    // The native table is the one `config_native_api` registers: each of its routes is served.
    for (method, path) in registered() {
        assert!(
            is_routed(&server, &method, &concrete(&path, "x")),
            "{method} {path} is in the route table but not served"
        );
    }
}

#[test]
fn the_document_describes_only_routes_that_exist() {
    let server = Server::open();
    let doc = document(&server);
    for (method, path) in operations(&doc) {
        assert!(
            is_routed(&server, &method, &concrete(&path, "x")),
            "/openapi.json describes {method} {path}, which the daemon does not serve"
        );
    }
    // The seed dialects follow their own documents.
    for path in doc["paths"].as_object().expect("paths").keys() {
        for dialect in ["/v1/", "/v2/", "/com/", "/v3.0/"] {
            assert!(
                !path.starts_with(dialect),
                "dialect route {path} in the native document"
            );
        }
    }
}

#[test]
fn the_document_is_openapi_3_1_with_problem_and_security() {
    let server = Server::open();
    let doc = document(&server);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "openapi = {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let problem = &doc["components"]["schemas"]["Problem"];
    let codes: BTreeSet<&str> = problem["properties"]["code"]["enum"]
        .as_array()
        .expect("Problem.code enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let all: BTreeSet<&str> = stockd::error::Code::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(codes, all, "Problem.code must list every code of error::Code");
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(
            problem["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(field))),
            "Problem requires {field}"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["partner_id"]["in"], "header");
    assert_eq!(schemes["partner_id"]["name"], "partner-id");
    assert_eq!(schemes["partner_signature"]["name"], "secret");
    // Every error answer of every operation is problem+json, with codes of that status.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            for (status, response) in op["responses"].as_object().expect("responses") {
                // Errors: every 4xx, and the 5xx of the API (a probe's 503 is plain text).
                let problem = status.starts_with('4') || (status.starts_with('5') && path.starts_with("/api/"));
                if !problem {
                    continue;
                }
                let schema = &response["content"]["application/problem+json"]["schema"];
                assert!(!schema.is_null(), "{method} {path} {status} is not problem+json");
                let narrowed = schema["allOf"][1]["properties"]["code"]["enum"]
                    .as_array()
                    .expect("codes of the answer");
                for code in narrowed {
                    let code = stockd::error::Code::ALL
                        .iter()
                        .find(|c| json!(c.name()) == *code)
                        .unwrap_or_else(|| panic!("{method} {path}: unknown code {code}"));
                    assert_eq!(code.status().as_str(), status, "{method} {path}: {}", code.name());
                }
            }
        }
    }
}

#[test]
fn authentication_is_as_documented() {
    let server = guarded();
    let doc = document(&server);
    let anonymous = server.with_token(None);
    let reader = server.with_token(Some(READ));
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let method = method.to_ascii_uppercase();
            let target = concrete(path, "x");
            let security = op["security"].as_array().cloned().unwrap_or_default();
            let res = anonymous.raw(with_body(anonymous.request(&method, &target)));
            if security.is_empty() {
                assert_ne!(
                    res.status, 401,
                    "{method} {path} is documented without auth: {}",
                    res.body
                );
                continue;
            }
            res.expect_error(401, "unauthenticated");
            assert!(
                res.header("www-authenticate").is_some(),
                "{method} {path}: 401 without WWW-Authenticate"
            );
            // The documented scope is the one the handler's guard requires.
            let scopes: Vec<&str> = security
                .iter()
                .find_map(|s| s["bearer"].as_array())
                .expect("a bearer requirement")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let res = reader.raw(with_body(reader.request(&method, &target)));
            if scopes == ["inventory:read"] {
                assert!(
                    res.status != 401 && res.status != 403,
                    "{method} {path} needs only inventory:read, yet a reader got {}: {}",
                    res.status,
                    res.body
                );
            } else {
                res.expect_error(403, "forbidden");
            }
        }
    }
}

#[test]
fn docs_serve_swagger_ui_from_the_binary_without_auth() {
    let server = guarded();
    let anonymous = server.with_token(None);
    let page = anonymous.get("/docs");
    page.expect(200);
    assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"));
    for needle in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/openapi.json",
        "SwaggerUIBundle",
    ] {
        assert!(page.body.contains(needle), "/docs lacks {needle}: {}", page.body);
    }
    let assets = [
        ("/docs/swagger-ui-bundle.js", "text/javascript", "swagger-ui-bundle.js"),
        ("/docs/swagger-ui.css", "text/css", "swagger-ui.css"),
    ];
    for (path, content_type, file) in assets {
        let res = anonymous.get(&format!("{path}?v={}", stockd::http::openapi::SWAGGER_UI_VERSION));
        res.expect(200);
        assert!(
            res.header("content-type").unwrap_or_default().starts_with(content_type),
            "{path}: content-type {:?}",
            res.header("content-type")
        );
        assert!(
            res.header("cache-control")
                .unwrap_or_default()
                .contains("max-age=31536000"),
            "{path}: cache-control {:?}",
            res.header("cache-control")
        );
        let vendored =
            std::fs::read(format!("{}/assets/swagger-ui/{file}", env!("CARGO_MANIFEST_DIR"))).expect("vendored asset");
        assert_eq!(
            res.header("content-length").and_then(|n| n.parse::<usize>().ok()),
            Some(vendored.len()),
            "{path} is not the vendored file"
        );
    }
    // The document too is public: it describes, it holds no data.
    document(&server);
}

// ---- real answers against the document ----

/// `schema` with a `$ref` followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {pointer}")),
        None => schema,
    }
}

fn type_matches(t: &str, value: &Value) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => false,
    }
}

/// A small JSON Schema check (the keywords the document uses), stricter than JSON Schema on
/// one point: an object may carry no field the schema does not list, so a field added to an
/// answer without its description fails here.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    check_schema(doc, schema, value, at, errors, true);
}

/// The property names `schema` and its `allOf` parts list.
fn known_fields<'a>(doc: &'a Value, schema: &'a Value, names: &mut BTreeSet<&'a str>) {
    let schema = resolve(doc, schema);
    names.extend(
        schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str()),
    );
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        known_fields(doc, sub, names);
    }
}

fn check_schema(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>, strict: bool) {
    let schema = resolve(doc, schema);
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        check_schema(doc, sub, value, at, errors, false);
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let matching = branches
            .iter()
            .filter(|b| {
                let mut e = Vec::new();
                conforms(doc, b, value, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!("{at}: matches {matching} oneOf branches: {value}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
        errors.push(format!("{at}: {value} is not of type {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            errors.push(format!("{at}: {value} is not {c}"));
        }
    }
    if let Value::Object(fields) = value {
        let properties = schema["properties"].as_object();
        let mut known = BTreeSet::new();
        known_fields(doc, schema, &mut known);
        for name in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !fields.contains_key(name) {
                errors.push(format!("{at}: the required field `{name}` is missing"));
            }
        }
        for (name, v) in fields {
            let at = format!("{at}.{name}");
            match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(s), _) => conforms(doc, s, v, &at, errors),
                (None, Some(extra)) if extra.is_object() => conforms(doc, extra, v, &at, errors),
                (None, _) if strict && !known.is_empty() && !known.contains(name.as_str()) => {
                    errors.push(format!("{at}: not in the document"))
                }
                (None, _) => {}
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            conforms(doc, item, v, &format!("{at}[{i}]"), errors);
        }
    }
}

/// The operation of the document that serves `method` `path` (a concrete path).
fn operation_for<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let t: Vec<&str> = template.split('/').collect();
        let same = t.len() == segments.len()
            && t.iter()
                .zip(&segments)
                .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')));
        if same {
            if let Some(op) = item.get(method.to_ascii_lowercase()) {
                return op;
            }
        }
    }
    panic!("no operation for {method} {path} in the document");
}

/// Sends the request and checks the answer against the document: a documented status, the
/// documented content type, and a body of the documented shape.
fn check_answer(client: &Client, doc: &Value, method: &str, path: &str, body: Option<Value>) -> Value {
    let mut req = client.request(method, path);
    if let Some(b) = &body {
        req = req.body(b.to_string());
    }
    let res = client.raw(req);
    let op = operation_for(doc, method, path);
    let response = op["responses"]
        .get(res.status.to_string())
        .unwrap_or_else(|| panic!("{method} {path} answered {}, not documented: {}", res.status, res.body));
    let content_type = res.header("content-type").unwrap_or_default().to_string();
    let media = response["content"]
        .as_object()
        .and_then(|c| c.iter().find(|(m, _)| content_type.starts_with(m.as_str())))
        .map(|(_, m)| m)
        .unwrap_or_else(|| panic!("{method} {path}: content-type {content_type} is not documented"));
    if !content_type.contains("json") {
        return Value::Null;
    }
    let value = res.json();
    let mut errors = Vec::new();
    conforms(doc, &media["schema"], &value, "body", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {path} ({}):\n{}\n{value}",
        res.status,
        errors.join("\n")
    );
    value
}

#[test]
fn real_answers_have_exactly_the_documented_shape() {
    let server = Server::open();
    let doc = document(&server);
    let c = &server.client;
    let check = |method: &str, path: &str, body: Option<Value>| check_answer(c, &doc, method, path, body);
    check("PUT", "/api/warehouses/wh-2", Some(json!({"name": "Second"})));
    check("PUT", "/api/warehouses/wh-2", Some(json!({"name": "Second (north)"})));
    check(
        "PUT",
        "/api/products/p1",
        Some(json!({"sku": "S1", "name": "One", "barcode": "123", "unit_cost": 2.5, "prices": {"retail": 4}})),
    );
    check("PUT", "/api/products/p2", Some(json!({"sku": "S2", "name": "Two"})));
    check(
        "PUT",
        "/api/products/p3",
        Some(json!({"sku": "S1", "name": "Taken sku"})),
    );
    let moved = check(
        "POST",
        "/api/inventory/movements",
        Some(
            json!({"product_id": "p1", "movement_type": "in", "quantity": 50, "cost_per_unit": 2.25,
            "reference_type": "po", "reference_id": "po-1", "notes": "n", "reason": "r"}),
        ),
    );
    let mov = moved["data"]["id"].as_str().expect("movement id").to_string();
    check(
        "POST",
        "/api/inventory/movements",
        Some(json!({"product_id": "p1", "movement_type": "out", "quantity": 500})),
    );
    let transfer = check(
        "POST",
        "/api/inventory/movements",
        Some(json!({"product_id": "p1", "movement_type": "transfer", "quantity": 5,
            "to_warehouse_id": "wh-2", "in_transit": true})),
    );
    let trf = transfer["data"]["transfer_id"]
        .as_str()
        .expect("transfer id")
        .to_string();
    check("GET", &format!("/api/inventory/transfers/{trf}"), None);
    check("POST", &format!("/api/inventory/transfers/{trf}/receive"), None);
    check("POST", &format!("/api/inventory/transfers/{trf}/receive"), None);
    check(
        "POST",
        "/api/inventory/movements",
        Some(json!({"product_id": "p1", "movement_type": "transfer", "quantity": 1, "to_warehouse_id": "wh-2"})),
    );
    check(
        "POST",
        "/api/inventory/adjustments",
        Some(
            json!({"adjustments": [{"product_id": "p1", "actual_quantity": 40, "reason": "count"},
            {"product_id": "p2", "warehouse_id": "wh-2", "actual_quantity": 0}]}),
        ),
    );
    check(
        "PATCH",
        "/api/inventory/levels/p1/default",
        Some(json!({"reorder_point": 45, "max_stock_level": 100, "buffer": 1})),
    );
    let reservation = check(
        "POST",
        "/api/inventory/reservations",
        Some(json!({"product_id": "p1", "quantity": 2, "reference_id": "o-1"})),
    );
    let res_id = reservation["data"]["id"].as_str().expect("reservation id").to_string();
    check("GET", &format!("/api/inventory/reservations/{res_id}"), None);
    check("POST", &format!("/api/inventory/reservations/{res_id}/commit"), None);
    check("DELETE", &format!("/api/inventory/reservations/{res_id}"), None);
    let other = check(
        "POST",
        "/api/inventory/reservations",
        Some(json!({"product_id": "p1", "quantity": 1})),
    );
    let other = other["data"]["id"].as_str().expect("reservation id").to_string();
    check("DELETE", &format!("/api/inventory/reservations/{other}"), None);
    for path in [
        "/api/warehouses",
        "/api/warehouses/wh-2",
        "/api/warehouses/nope",
        "/api/products",
        "/api/products?q=one&limit=1",
        "/api/products/p1",
        "/api/products/nope",
        "/api/products/p1/inventory",
        "/api/inventory",
        "/api/inventory?low_stock=true",
        "/api/inventory?limit=1&cursor=nope",
        "/api/inventory/movements",
        "/api/inventory/movements?limit=2",
        &format!("/api/inventory/movements/{mov}"),
        "/api/inventory/movements/mov_999999",
        "/api/inventory/analytics",
        "/api/inventory/analytics?period=7d&warehouse_id=wh-2",
        "/api/inventory/analytics?period=2d",
        "/api/inventory/changes",
        "/api/inventory/changes?after=2&limit=2",
        "/api/inventory/reservations/nope",
        "/admin/verify",
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
    ] {
        check("GET", path, None);
    }
    let backup = check("POST", "/admin/backup", None);
    // `file` is the path on the daemon's machine; the download takes its file name.
    let file = backup["data"]["file"].as_str().expect("snapshot file").to_string();
    let name = std::path::Path::new(&file).file_name().expect("a file name");
    check("GET", &format!("/admin/backups/{}", name.to_string_lossy()), None);
    check("GET", "/admin/backups/nope", None);
}

// ---- findings of the API fuzzing (.ci/fuzz-api), kept as regression tests ----

/// schemathesis `unsupported_method` (ST204): a method a documented path does not take
/// answered 404 `route_not_found`, as if the path did not exist. It is 405 with `Allow`
/// listing the documented methods (what `allow_header_conformance` checks).
#[test]
fn an_undeclared_method_is_405_with_allow() {
    let server = Server::open();
    let doc = document(&server);
    let before = server.journal_len();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let mut documented: Vec<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_ascii_uppercase())
            .collect();
        documented.sort();
        // (Not HEAD: the test client reads a body, HEAD answers have none.)
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH", "TRACE", "OPTIONS"] {
            if documented.iter().any(|m| m == method) {
                continue;
            }
            let target = concrete(path, "x");
            let res = server.raw(with_body(server.request(method, &target)));
            assert_eq!(res.status, 405, "{method} {path}: {}", res.body);
            let allow: Vec<String> = res
                .header("allow")
                .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"))
                .split(',')
                .map(|m| m.trim().to_string())
                .collect();
            assert_eq!(allow, documented, "{method} {path}: Allow");
            res.expect_error(405, "method_not_allowed");
        }
    }
    assert_eq!(server.journal_len(), before, "a refused method changed something");
    // A path that does not exist is still 404.
    server
        .raw(server.request("DELETE", "/api/nope"))
        .expect_error(404, "route_not_found");
}
