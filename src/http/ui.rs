//! The web dashboard (issue 14, API.md "Dashboard"): static files embedded in the binary
//! at build time, served without credentials (DESIGN.md exempts the static shell). Every
//! piece of data the pages show comes from the API with the user's bearer token: this
//! module serves no data and adds no way around the API's auth.
//!
//! - `GET /` and `GET /ui` redirect to `/ui/`;
//! - `GET /ui/` is the page (`index.html`), revalidated on every load (`no-cache` + ETag);
//! - `GET /ui/{version}/{file}` are its scripts and styles, under a version that is a hash
//!   of every asset: the page names them with it, relative module imports inherit it, so
//!   they are cached for a year (`immutable`) and a new build changes every URL at once;
//! - gzip where it pays (text over [`GZIP_MIN_BYTES`] that shrinks by a tenth), compressed
//!   once on first use; `Content-Security-Policy: default-src 'self'` on every answer.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Code};

/// Where the pages live.
pub const UI_PATH: &str = "/ui/";
/// The page's policy: its own origin only — no inline script or style, no other host, no
/// framing (the API.md line is `default-src 'self'`; the rest narrows what it leaves open).
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'";
/// Versioned assets never change under their URL.
const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// The page itself is small and names the current version: always revalidated.
const PAGE_CACHE_CONTROL: &str = "no-cache";
/// Smaller files go out as they are: gzip's header and a round of CPU do not pay.
const GZIP_MIN_BYTES: usize = 1024;
/// The page's placeholder for the asset version.
const VERSION_PLACEHOLDER: &str = "__VERSION__";

/// One embedded file.
struct Embedded {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// The table of embedded files: each `include_bytes!` of `assets/ui/<name>`. A unit test
/// checks that it lists exactly the files of that directory.
macro_rules! embedded {
    ($($name:literal => $type:literal,)*) => {
        const EMBEDDED: &[Embedded] = &[$(Embedded {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/ui/", $name)),
        }),*];
    };
}

embedded! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "chart.js" => "text/javascript; charset=utf-8",
    "pages.js" => "text/javascript; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
    "icon.svg" => "image/svg+xml",
}

/// A file as served: its bytes, gzipped bytes when that pays, and its ETag.
struct Served {
    name: &'static str,
    content_type: &'static str,
    plain: web::Bytes,
    gzip: Option<web::Bytes>,
    etag: String,
}

struct Table {
    /// A hash of every asset: the path segment of the versioned URLs.
    version: String,
    page: Served,
    assets: Vec<Served>,
}

static TABLE: LazyLock<Table> = LazyLock::new(build_table);

fn build_table() -> Table {
    let mut all = Sha256::new();
    for e in EMBEDDED {
        all.update(e.name.as_bytes());
        all.update([0]);
        all.update(e.bytes);
    }
    let version = crate::hex(&all.finalize()[..6]);
    let mut page = None;
    let mut assets = Vec::new();
    for e in EMBEDDED {
        if e.name == "index.html" {
            let text = String::from_utf8_lossy(e.bytes).replace(VERSION_PLACEHOLDER, &version);
            page = Some(served(e, text.into_bytes()));
        } else {
            assets.push(served(e, e.bytes.to_vec()));
        }
    }
    let page = page.unwrap_or_else(|| served(&EMBEDDED[0], Vec::new()));
    Table { version, page, assets }
}

fn served(e: &Embedded, bytes: Vec<u8>) -> Served {
    let etag = format!("\"{}\"", crate::hex(&Sha256::digest(&bytes)[..8]));
    let gzip = gzip_if_it_pays(e.content_type, &bytes);
    Served {
        name: e.name,
        content_type: e.content_type,
        plain: web::Bytes::from(bytes),
        gzip: gzip.map(web::Bytes::from),
        etag,
    }
}

/// Gzipped text, when it is at least [`GZIP_MIN_BYTES`] and shrinks by a tenth.
fn gzip_if_it_pays(content_type: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let text = content_type.starts_with("text/") || content_type.starts_with("image/svg");
    if !text || bytes.len() < GZIP_MIN_BYTES {
        return None;
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).ok()?;
    let packed = enc.finish().ok()?;
    (packed.len() * 10 < bytes.len() * 9).then_some(packed)
}

pub fn config_ui(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    // HEAD as GET (actix sends the head without the body): `curl -I` and link checkers.
    paths
        .on(cfg)
        .route("/", web::get().to(to_ui))
        .route("/", web::head().to(to_ui))
        .route("/ui", web::get().to(to_ui))
        .route("/ui", web::head().to(to_ui))
        .route("/ui/", web::get().to(page))
        .route("/ui/", web::head().to(page))
        .route("/ui/{version}/{name}", web::get().to(asset))
        .route("/ui/{version}/{name}", web::head().to(asset));
}

/// The total size of the embedded files, for the docs' "what the dashboard adds" figure.
pub fn embedded_bytes() -> usize {
    EMBEDDED.iter().map(|e| e.bytes.len()).sum()
}

async fn to_ui() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, UI_PATH))
        .insert_header((header::CACHE_CONTROL, PAGE_CACHE_CONTROL))
        .finish()
}

async fn page(req: HttpRequest) -> HttpResponse {
    answer(&req, &TABLE.page, PAGE_CACHE_CONTROL)
}

async fn asset(req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (version, name) = path.into_inner();
    let table = &*TABLE;
    // Another build's version: answering today's bytes under it would cache them forever
    // under a name that promised other ones.
    let found = (version == table.version)
        .then(|| table.assets.iter().find(|a| a.name == name))
        .flatten();
    match found {
        Some(served) => Ok(answer(&req, served, ASSET_CACHE_CONTROL)),
        None => Err(ApiError::new(
            Code::RouteNotFound,
            "no such dashboard file (the page may be from an older build: reload it)",
        )),
    }
}

/// The file, or 304 when the client holds it (`If-None-Match`); gzipped when accepted.
fn answer(req: &HttpRequest, served: &Served, cache_control: &str) -> HttpResponse {
    let fresh = etag_matches(req, &served.etag);
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, served.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    if served.gzip.is_some() {
        res.insert_header((header::VARY, "Accept-Encoding"));
    }
    if fresh {
        return res.finish();
    }
    res.content_type(served.content_type);
    match &served.gzip {
        Some(gz) if accepts_gzip(req) => res.insert_header((header::CONTENT_ENCODING, "gzip")).body(gz.clone()),
        _ => res.body(served.plain.clone()),
    }
}

fn etag_matches(req: &HttpRequest, etag: &str) -> bool {
    let Some(value) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// Whether `Accept-Encoding` names gzip (or `*`) without `q=0`.
fn accepts_gzip(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let refused = parts.any(|p| matches!(p.replace(' ', "").as_str(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_file_of_the_assets_dir() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/ui");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("assets/ui")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = EMBEDDED.iter().map(|e| e.name.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "src/http/ui.rs `embedded!` must list assets/ui exactly"
        );
    }

    #[test]
    fn the_page_names_assets_by_version_and_has_no_inline_script_or_style() {
        let t = &*TABLE;
        let page = String::from_utf8_lossy(&t.page.plain).into_owned();
        assert!(page.contains(&format!("/ui/{}/app.js", t.version)));
        assert!(!page.contains(VERSION_PLACEHOLDER));
        assert!(!page.contains("<style"), "inline style is blocked by the CSP");
        assert!(!page.contains(" style="), "style attributes are blocked by the CSP");
        for script in page.split("<script").skip(1) {
            assert!(
                script.trim_start().starts_with("type=\"module\" src="),
                "inline script: {script}"
            );
        }
    }

    #[test]
    fn scripts_set_no_style_attribute_or_inline_handler() {
        for e in EMBEDDED.iter().filter(|e| e.name.ends_with(".js")) {
            let text = String::from_utf8_lossy(e.bytes);
            for banned in [
                "innerHTML",
                "setAttribute(\"style\"",
                "eval(",
                "new Function",
                "onclick=",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", e.name);
            }
        }
    }
}
