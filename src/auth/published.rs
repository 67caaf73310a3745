//! Credentials printed in stockd's own README, docs and examples. Anyone can read them, so
//! a config that uses one is refused at start (exit 2), like an empty secret.
//!
//! A test below scans README.md, config.example.toml, docs/ and deploy/ for anything that
//! looks like a credential and fails unless it is listed here or could not work anyway, so
//! a later edit of the docs cannot publish a working credential unnoticed.

/// Lowercase hex SHA-256 values shown in the docs: token hashes (also of the example tokens
/// that earlier versions of config.example.toml carried), placeholders, and the example
/// body hash of docs/partners.md (not a token hash, but a 64-hex value anyone can copy).
pub const PUBLISHED_TOKEN_HASHES: &[&str] = &[
    // sha256("test"), sha256("test2"): the example tokens of config.example.toml until 2026-11.
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
    // config.example.toml's placeholders.
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1111111111111111111111111111111111111111111111111111111111111111",
    // docs/partners.md: the SHA-256 of the fixed vector's body.
    "31305301b710c86bfc2ba849cef9c33ec113d0b303da816b3570e8b683199b31",
];

/// Partner secrets shown in the docs. Those shorter than 16 bytes are refused for their
/// length already; they are listed so the list says what the docs show.
pub const PUBLISHED_SECRETS: &[&str] = &[
    // docs/partners.md: the fixed vector's secret.
    "s3cr3t",
    // config.example.toml's placeholder.
    "replace-with-the-secret-from-stockd-partner-new",
    // config.example.toml's webhook placeholder (base64 of `replace-with-stockd-webhook-new!`).
    "whsec_cmVwbGFjZS13aXRoLXN0b2NrZC13ZWJob29rLW5ldyE=",
];

/// Whether `hash` (hex, any case) is one of [`PUBLISHED_TOKEN_HASHES`].
pub fn is_published_hash(hash: &str) -> bool {
    PUBLISHED_TOKEN_HASHES.iter().any(|h| h.eq_ignore_ascii_case(hash))
}

/// Whether `secret` is one of [`PUBLISHED_SECRETS`] (exactly: a secret is its bytes).
pub fn is_published_secret(secret: &str) -> bool {
    PUBLISHED_SECRETS.contains(&secret)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// README.md, config.example.toml, and every file under docs/ and deploy/.
    fn published_files() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("README.md"), root.join("config.example.toml")];
        let mut dirs = vec![root.join("docs"), root.join("deploy")];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files
    }

    fn is_hex64(word: &str) -> bool {
        word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit())
    }

    /// Runs of characters that can make up a token, a hash or a secret.
    fn words(line: &str) -> impl Iterator<Item = &str> {
        line.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.~+/=".contains(c)))
            .filter(|w| !w.is_empty())
    }

    /// The first quoted value ('…', "…" or `…`) at the start of `text`, if it starts with one.
    fn leading_quoted(text: &str) -> Option<&str> {
        let quote = text.chars().next().filter(|c| "'\"`".contains(*c))?;
        text[1..].split(quote).next()
    }

    /// What a line shows as a partner secret: the values of `secrets = [...]` and
    /// `secret = "…"` (TOML), `…SECRET=…` (shell), `"secret": "…"` (JSON), `sign("…"`
    /// (the docs' code) and ``secret `…` `` (prose).
    fn secret_values(line: &str) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(list) = line.split("secrets = [").nth(1) {
            let list = list.split(']').next().unwrap_or_default();
            out.extend(list.split(',').filter_map(|v| leading_quoted(v.trim())));
        }
        for marker in ["secret = ", "\"secret\": ", "sign(", "secret "] {
            out.extend(line.split(marker).skip(1).filter_map(leading_quoted));
        }
        for after in line.split("SECRET=").skip(1) {
            let value = leading_quoted(after).or_else(|| after.split(|c: char| c.is_whitespace() || c == ';').next());
            out.extend(value);
        }
        out
    }

    /// A value shown as a placeholder or a variable (`<token>`, `$TOKEN`, `TOKEN`), not a
    /// credential.
    fn is_placeholder(value: &str) -> bool {
        // `<token>`, `$STOCKD_TOKEN`, `{token}`, `stk_…` (elided): nothing a client could send.
        value.contains(['<', '$', '{', '…']) || value.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    }

    /// What a line shows as a bearer token: after `Authorization:` (with or without
    /// `Bearer`), `--token ` or `STOCKD_TOKEN=`.
    fn bearer_tokens(line: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for marker in ["Authorization:", "--token ", "STOCKD_TOKEN="] {
            for after in line.split(marker).skip(1) {
                let after = after.trim_start();
                let after = match after.get(..7) {
                    Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => after[7..].trim_start(),
                    _ => after,
                };
                let token = after
                    .split(|c: char| c.is_whitespace() || "\"'`)".contains(c))
                    .next()
                    .unwrap_or_default();
                if !token.is_empty() && !is_placeholder(token) {
                    out.push(token);
                }
            }
        }
        out
    }

    /// Every credential-looking value of the docs is listed, or could not work: 64-hex
    /// values are listed hashes, literal bearer tokens hash to a listed hash, and every
    /// value shown as a secret is refused as a secret (short or listed).
    #[test]
    fn every_credential_in_the_docs_is_refused() {
        let mut unlisted = Vec::new();
        for file in published_files() {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for (n, line) in text.lines().enumerate() {
                let at = format!("{}:{}", file.display(), n + 1);
                for word in words(line).filter(|w| is_hex64(w)) {
                    if !is_published_hash(word) {
                        unlisted.push(format!("{at}: hash {word}"));
                    }
                }
                for token in bearer_tokens(line) {
                    let hash = crate::auth::sha256_hex(token.as_bytes());
                    if !is_published_hash(&hash) {
                        unlisted.push(format!("{at}: token {token} (its SHA-256 {hash})"));
                    }
                }
                for value in secret_values(line).into_iter().filter(|v| !is_placeholder(v)) {
                    if crate::config::secret_refusal(value).is_none() {
                        unlisted.push(format!("{at}: secret {value:?}"));
                    }
                }
            }
        }
        assert!(
            unlisted.is_empty(),
            "credentials in the docs that a config would accept; list them in \
             src/auth/published.rs or make them placeholders:\n{}",
            unlisted.join("\n")
        );
    }

    #[test]
    fn the_scanner_finds_what_it_should() {
        let line = r#"curl -H "Authorization: Bearer stk_abc" --token t2 secrets = ["a-long-enough-secret"]"#;
        assert_eq!(bearer_tokens(line), vec!["stk_abc", "t2"]);
        assert_eq!(bearer_tokens("-H 'Authorization: bare-token'"), vec!["bare-token"]);
        assert_eq!(secret_values(line), vec!["a-long-enough-secret"]);
        let shown = r#"SECRET='s1'; X_SECRET=s2 sign("s3", …) secret `s4`, secret = "s5", "secret": "s6""#;
        let mut found = secret_values(shown);
        found.sort_unstable();
        assert_eq!(found, vec!["s1", "s2", "s3", "s4", "s5", "s6"]);
        let placeholders = "Authorization: Bearer $TOKEN, `Authorization: Bearer <token>` --token TOKEN";
        assert!(bearer_tokens(placeholders).is_empty());
        assert!(words("sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"").any(is_hex64));
        assert!(is_published_hash(&PUBLISHED_TOKEN_HASHES[0].to_ascii_uppercase()));
        assert!(!is_published_secret("S3CR3T"));
    }
}
