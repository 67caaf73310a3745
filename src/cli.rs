//! The command line (API.md "Command line").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

#[derive(Parser, Debug)]
#[command(
    name = "stockd",
    version,
    about = "Inventory ledger daemon: stock movements and levels in one redb file"
)]
pub struct Cli {
    /// Log lines as human-readable text or as JSON objects (one per line), given before
    /// the command: `stockd --log-format json serve`. Filter with RUST_LOG, e.g.
    /// `RUST_LOG=warn` or `RUST_LOG=info,stockd::http=warn`.
    // Not `global`: a global flag is listed again in every subcommand's help.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "STOCKD_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Run the daemon.
    Serve {
        /// Config file (TOML); without one, the embedded defaults.
        #[arg(long, env = "STOCKD_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, e.g. 127.0.0.1:8080 (overrides the config).
        #[arg(long, env = "STOCKD_LISTEN")]
        listen: Option<String>,
        /// Data file (overrides the config).
        #[arg(long, env = "STOCKD_DATA")]
        data: Option<PathBuf>,
    },
    /// Fold the journal and check the hash chain, seq and levels; exit 1 on any mismatch.
    Verify {
        /// The data file to check (read only; a running daemon may have it open).
        #[arg(long)]
        data: PathBuf,
    },
    /// Ask a running daemon for a snapshot (POST /admin/backup); with --out, download it.
    Backup {
        /// The daemon, e.g. http://127.0.0.1:8080
        #[arg(long, env = "STOCKD_URL")]
        url: String,
        /// A token with the admin scope.
        #[arg(long, env = "STOCKD_TOKEN")]
        token: String,
        /// Also copy the snapshot to this file (written atomically, then verified).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Manage bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage HMAC partners.
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
    /// Manage outbound webhooks.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Load products, warehouses or opening stock from CSV or NDJSON into a data file that
    /// no daemon has open. All rows, or none; errors name the line and the column.
    Import {
        /// The data file to load into (created when missing; no daemon may have it open).
        #[arg(long, env = "STOCKD_DATA")]
        data: PathBuf,
        /// What the input holds.
        #[arg(long, value_enum)]
        kind: crate::bulk::ImportKind,
        /// Default: from the file's extension (.csv, .ndjson).
        #[arg(long, value_enum)]
        format: Option<crate::bulk::Format>,
        /// The daemon's config, for `allow_negative` and the default warehouse.
        #[arg(long, env = "STOCKD_CONFIG")]
        config: Option<PathBuf>,
        /// The input file, or `-` for standard input.
        input: PathBuf,
    },
    /// Write products, levels or movements of a data file that no daemon has open, as CSV
    /// or NDJSON, from one consistent snapshot.
    Export {
        /// The data file to read (no daemon may have it open).
        #[arg(long, env = "STOCKD_DATA")]
        data: PathBuf,
        /// What to write.
        #[arg(long, value_enum)]
        kind: crate::bulk::ExportKind,
        /// Default: from --out's extension, else csv.
        #[arg(long, value_enum)]
        format: Option<crate::bulk::Format>,
        /// Movements from this seq on.
        #[arg(long)]
        from_seq: Option<u64>,
        /// Movements up to this seq.
        #[arg(long)]
        to_seq: Option<u64>,
        /// Movements at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Movements at or before this time (a date includes its whole day, UTC).
        #[arg(long)]
        until: Option<String>,
        /// Output file (written atomically); default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write DIR/stockd.toml for production: data file, backups every hour, listen address,
    /// and one fresh admin token, printed once (only its hash is in the file). Never
    /// overwrites: an existing stockd.toml is an error (exit 2).
    Init {
        /// Where the config goes; the data file and backups/ go there too.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Print a shell completion script, e.g. `stockd completions bash > /etc/bash_completion.d/stockd`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum PartnerCommand {
    /// Print a fresh random partner secret and its config lines.
    ///
    /// Standard output is the `[[partners]]` lines, ready for `>> stockd.toml`: they hold the
    /// secret itself, because the daemon checks signatures with it (keep the config
    /// readable by the daemon's user only). Standard error repeats the secret, to hand to the
    /// partner once over a safe channel.
    New {
        /// The partner's id, sent in its requests' `partner-id` header (unique among
        /// token names and partner ids).
        #[arg(long)]
        id: String,
        /// Comma-separated: inventory:read, inventory:write, catalog:write, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Comma-separated warehouse ids the partner is restricted to.
        #[arg(long, value_delimiter = ',')]
        warehouses: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Print a fresh webhook signing secret (`whsec_…`) and its config lines.
    ///
    /// Standard output is the `[[webhooks]]` lines, ready for `>> stockd.toml` (the daemon
    /// signs with the secret, so the config holds it: keep it owner-only). Standard error
    /// repeats the secret, to configure on the receiving side.
    New {
        /// The sink's id: 1 to 64 of a-z, 0-9, `_` and `-`, unique among sinks.
        #[arg(long)]
        id: String,
        /// The endpoint: http:// or https://.
        #[arg(long)]
        url: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a fresh random token once, and the config lines that hold its hash.
    ///
    /// Standard output is only the `[[tokens]]` lines (the SHA-256 of the token), ready for
    /// `stockd token new … >> stockd.toml`; the token itself goes to standard error, shown
    /// once: give it to the client. The daemon never stores it.
    New {
        /// The token's name: who made a request, in logs and `created_by` (unique among
        /// token names and partner ids).
        #[arg(long)]
        name: String,
        /// Comma-separated: inventory:read, inventory:write, catalog:write, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Comma-separated warehouse ids the token is restricted to.
        #[arg(long, value_delimiter = ',')]
        warehouses: Vec<String>,
    },
}

/// Exit codes (API.md): 0 success, 1 check failed or runtime error, 2 usage or config.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Resolves the serve configuration: flag, then environment (clap), then file, then defaults.
pub fn serve_config(
    config: Option<PathBuf>,
    listen: Option<String>,
    data: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    let mut cfg = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(listen) = listen {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError(format!(
                "--listen: `{listen}` is not an address like 127.0.0.1:8080"
            )));
        }
        cfg.server.listen = listen;
        cfg.source.set_by("server.listen", "--listen (or STOCKD_LISTEN)");
    }
    if let Some(data) = data {
        cfg.storage.path = data;
        cfg.source.set_by("storage.path", "--data (or STOCKD_DATA)");
    }
    Ok(cfg)
}

/// Files this process creates from here on are readable by its user only (API.md): the
/// data file and its redo log, snapshots, downloaded copies, the config `init` writes.
/// systemd's `UMask=` does the same under the unit; this covers every other way to run it.
fn owner_only_files() {
    // SAFETY: umask(2) only replaces the process's file-mode creation mask; it has no
    // memory-safety preconditions and cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

pub fn run(cli: Cli) -> ExitCode {
    if matches!(
        cli.command,
        Commands::Serve { .. } | Commands::Import { .. } | Commands::Backup { .. } | Commands::Init { .. }
    ) {
        owner_only_files();
    }
    match cli.command {
        Commands::Init { dir } => init(&dir),
        Commands::Serve { config, listen, data } => serve(config, listen, data),
        Commands::Verify { data } => verify(&data),
        Commands::Backup { url, token, out } => backup(&url, &token, out.as_deref()),
        Commands::Token {
            command:
                TokenCommand::New {
                    name,
                    scopes,
                    warehouses,
                },
        } => token_new(&name, &scopes, &warehouses),
        Commands::Partner {
            command: PartnerCommand::New { id, scopes, warehouses },
        } => partner_new(&id, &scopes, &warehouses),
        Commands::Webhook {
            command: WebhookCommand::New { id, url },
        } => webhook_new(&id, &url),
        Commands::Import {
            data,
            kind,
            format,
            config,
            input,
        } => import(&data, kind, format, config, &input),
        Commands::Export {
            data,
            kind,
            format,
            from_seq,
            to_seq,
            since,
            until,
            out,
        } => {
            let range = crate::bulk::ExportRange {
                from_seq,
                to_seq,
                since,
                until,
            };
            export(&data, kind, format, &range, out.as_deref())
        }
        Commands::Completions { shell } => completions(shell),
    }
}

/// Prints the completion script. A reader that leaves early (`| head -1`) is no failure:
/// clap_complete would panic writing to the closed pipe, so the script is built first.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "stockd", &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stockd: completions: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn check_scopes(scopes: &[String]) -> Result<(), ExitCode> {
    for s in scopes {
        if crate::auth::Scope::parse(s).is_none() {
            eprintln!("stockd: unknown scope `{s}` (inventory:read, inventory:write, catalog:write, admin)");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    }
    Ok(())
}

/// `["a", "b"]` for a config line.
fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn partner_new(id: &str, scopes: &[String], warehouses: &[String]) -> ExitCode {
    if let Err(code) = check_scopes(scopes) {
        return code;
    }
    let secret = match crate::auth::new_secret() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stockd: no randomness: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    // The config must hold the secret (the daemon signs with it too): stdout is the config
    // lines, secret included; stderr says what to hand to the partner.
    eprintln!("Give the partner its id `{id}` and this secret once, over a safe channel:");
    eprintln!("{secret}");
    eprintln!("The [[partners]] lines (on standard output) hold the secret too: keep the config owner-only.");
    println!("# During a rotation keep the old secret as the second entry of `secrets`.");
    println!("[[partners]]");
    println!("id = {id:?}");
    println!("secrets = [{secret:?}]");
    println!("scopes = {}", toml_list(scopes));
    if !warehouses.is_empty() {
        println!("warehouses = {}", toml_list(warehouses));
    }
    println!("legacy_signature = false");
    ExitCode::SUCCESS
}

fn webhook_new(id: &str, url: &str) -> ExitCode {
    let refusal = crate::sinks::id_refusal(id)
        .map(|why| format!("--id: {why}"))
        .or_else(|| crate::sinks::webhook::url_refusal(url).map(|why| format!("--url: {why}")));
    if let Some(why) = refusal {
        eprintln!("stockd: {why}");
        return ExitCode::from(EXIT_USAGE);
    }
    let secret = match crate::sinks::webhook::new_secret() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stockd: no randomness: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    eprintln!("Configure the receiver of `{id}` with this signing secret (Standard Webhooks):");
    eprintln!("{secret}");
    eprintln!("The [[webhooks]] lines (on standard output) hold the secret too: keep the config owner-only.");
    println!("# During a rotation add the new secret first and keep the old one second.");
    println!("[[webhooks]]");
    println!("id = {id:?}");
    println!("url = {url:?}");
    println!("secrets = [{secret:?}]");
    println!("# events = [\"movement.created\", \"level.low_stock\", \"level.out_of_stock\", \"reservation.expired\"]");
    println!("# warehouses = [\"default\"]");
    ExitCode::SUCCESS
}

fn serve(config: Option<PathBuf>, listen: Option<String>, data: Option<PathBuf>) -> ExitCode {
    let cfg = match serve_config(config, listen, data) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stockd: config error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let daemon = match crate::start(&cfg) {
            Ok(d) => d,
            Err(crate::StartError::Config(e)) => {
                eprintln!("stockd: config error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            Err(crate::StartError::Runtime(e)) => {
                eprintln!("stockd: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        };
        if cfg.is_open() {
            // Once, as a log line (a second copy on stderr would break JSON logs).
            tracing::warn!(
                "OPEN MODE: no [[tokens]] or [[partners]] configured — every request is admin; anyone on this machine is admin. Loopback only."
            );
        }
        // Tests and scripts read this line to learn the port when listening on :0.
        println!(
            "stockd listening on {}://{} (data {})",
            daemon.scheme,
            daemon.addr,
            cfg.storage.path.display()
        );
        crate::notify::notify("READY=1");
        let crate::Daemon {
            server,
            store,
            _backups,
            _sweeper,
            _sinks,
            ..
        } = daemon;
        let result = server.await;
        crate::notify::notify("STOPPING=1");
        // Stop the background writers first, then commit what is queued and close.
        // The sinks record their positions through the writer, so they stop before it.
        drop((_backups, _sweeper, _sinks));
        let _ = actix_web::rt::task::spawn_blocking(move || store.shutdown()).await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stockd: {e}");
                ExitCode::from(EXIT_FAILED)
            }
        }
    })
}

fn backup(url: &str, token: &str, out: Option<&std::path::Path>) -> ExitCode {
    match take_backup(url, token, out) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stockd: backup: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn take_backup(url: &str, token: &str, out: Option<&std::path::Path>) -> Result<String, String> {
    let answer = crate::client::send(url, "POST", "/admin/backup", token)?;
    let text = String::from_utf8_lossy(&answer.body).to_string();
    if answer.status != 201 {
        return Err(format!("the daemon answered {}: {text}", answer.status));
    }
    let Some(out) = out else { return Ok(text) };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let file = value["data"]["file"].as_str().unwrap_or_default();
    let name = std::path::Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("the daemon named no file: {text}"))?;
    let download = crate::client::send(url, "GET", &format!("/admin/backups/{name}"), token)?;
    if download.status != 200 {
        return Err(format!("downloading {name}: the daemon answered {}", download.status));
    }
    let tmp = out.with_extension("download");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&download.body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    };
    write().map_err(|e| format!("{}: {e}", out.display()))?;
    let report = crate::store::verify_file(out).map_err(|e| e.to_string())?;
    if !report.ok {
        return Err(format!("{}: the copy does not verify: {report}", out.display()));
    }
    Ok(format!("{text}\n{}: {report}", out.display()))
}

fn verify(path: &std::path::Path) -> ExitCode {
    match crate::store::verify_file(path) {
        Ok(report) => {
            println!("{}: {report}", path.display());
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
        Err(e) => {
            eprintln!("stockd: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn token_new(name: &str, scopes: &[String], warehouses: &[String]) -> ExitCode {
    if let Err(code) = check_scopes(scopes) {
        return code;
    }
    let (token, hash) = match crate::auth::new_token() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("stockd: no randomness: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    // Only the hash goes to stdout, the part meant for the config (`>> stockd.toml`); the
    // token goes to stderr, for the person running the command.
    eprintln!("The token (shown once; give it to the client, it is not stored anywhere):");
    eprintln!("{token}");
    println!("[[tokens]]");
    println!("name = {name:?}");
    println!("sha256 = \"{hash}\"");
    println!("scopes = {}", toml_list(scopes));
    if !warehouses.is_empty() {
        println!("warehouses = {}", toml_list(warehouses));
    }
    ExitCode::SUCCESS
}

fn import(
    data: &std::path::Path,
    kind: crate::bulk::ImportKind,
    format: Option<crate::bulk::Format>,
    config: Option<PathBuf>,
    input: &std::path::Path,
) -> ExitCode {
    let cfg = match config.as_deref().map(Config::load).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("stockd: config error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let stdin = input.as_os_str() == "-";
    let format = match crate::bulk::Format::pick(format, (!stdin).then_some(input)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("stockd: import: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut reader: Box<dyn std::io::BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(input) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("stockd: import: {}: {e}", input.display());
                return ExitCode::from(EXIT_FAILED);
            }
        }
    };
    match crate::bulk::import(
        data,
        kind,
        format,
        &mut reader,
        &cfg.rules(),
        &cfg.inventory.default_warehouse,
    ) {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stockd: import: {}: {e}", input.display());
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn export(
    data: &std::path::Path,
    kind: crate::bulk::ExportKind,
    format: Option<crate::bulk::Format>,
    range: &crate::bulk::ExportRange,
    out: Option<&std::path::Path>,
) -> ExitCode {
    let format = crate::bulk::Format::pick(format, out).unwrap_or(crate::bulk::Format::Csv);
    let result = match out {
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            crate::bulk::export(data, kind, format, range, &mut lock)
        }
        Some(path) => export_to_file(data, kind, format, range, path),
    };
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        // The reader went away (`stockd export … | head`): not a failure of the export.
        Err(e) if e.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stockd: export: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Writes beside `path`, fsyncs, then renames: a reader never sees half an export.
fn export_to_file(
    data: &std::path::Path,
    kind: crate::bulk::ExportKind,
    format: crate::bulk::Format,
    range: &crate::bulk::ExportRange,
    path: &std::path::Path,
) -> Result<String, String> {
    let tmp = path.with_extension("partial");
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    let summary = crate::bulk::export(data, kind, format, range, &mut w);
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(summary)
}

/// The name of the file `stockd init` writes in its directory.
pub const INIT_CONFIG_NAME: &str = "stockd.toml";

/// `stockd init`: a production config with a fresh admin token (printed once).
fn init(dir: &std::path::Path) -> ExitCode {
    match write_init(dir) {
        Ok((path, token)) => {
            let listen = crate::config::LISTEN_DEFAULT;
            println!("Wrote {} (readable by you only).", path.display());
            println!("The admin token, shown this once (only its SHA-256 is in the file); keep it safe:");
            println!();
            println!("    {token}");
            println!();
            println!("Start:  stockd serve --config {}", path.display());
            println!("Try:    curl -H \"Authorization: Bearer {token}\" http://{listen}/admin/verify");
            ExitCode::SUCCESS
        }
        Err((code, why)) => {
            eprintln!("stockd: init: {why}");
            ExitCode::from(code)
        }
    }
}

/// Writes the config (never over an existing file) and returns its path and the token.
fn write_init(dir: &std::path::Path) -> Result<(PathBuf, String), (u8, String)> {
    let usage = |why: String| (EXIT_USAGE, why);
    let failed = |why: String| (EXIT_FAILED, why);
    let dir = std::path::absolute(dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    let path = dir.join(INIT_CONFIG_NAME);
    if path.exists() {
        return Err(usage(format!(
            "{} already exists; init never overwrites a config (move it away, or pick another --dir)",
            path.display()
        )));
    }
    let (token, hash) = crate::auth::new_token().map_err(|e| failed(format!("no randomness: {e}")))?;
    let text = init_config(&dir, &hash).map_err(usage)?;
    std::fs::create_dir_all(&dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // create_new: a config that appeared since the check above is not overwritten either.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            usage(format!("{} already exists; init never overwrites it", path.display()))
        }
        _ => failed(format!("{}: {e}", path.display())),
    })?;
    Ok((path, token))
}

/// The text of `stockd init`'s config: absolute paths, so it works from any directory.
fn init_config(dir: &std::path::Path, token_hash: &str) -> Result<String, String> {
    let quoted = |p: PathBuf| -> Result<String, String> {
        let text = p
            .to_str()
            .ok_or_else(|| format!("{}: the path is not UTF-8, which TOML cannot hold", p.display()))?;
        Ok(toml::Value::String(text.to_string()).to_string())
    };
    let data = quoted(dir.join(crate::config::DATA_DEFAULT))?;
    let backups = quoted(dir.join("backups"))?;
    let listen = crate::config::LISTEN_DEFAULT;
    let keep = crate::config::BACKUP_KEEP_DEFAULT;
    Ok(format!(
        r#"# stockd configuration, written by `stockd init`. Every key: config.example.toml;
# running stockd in production (TLS, systemd, backups, restore): docs/operations.md.

[server]
listen = "{listen}"
# HTTPS from stockd itself (SIGHUP re-reads the files after a certbot renewal), or keep
# 127.0.0.1 and put a reverse proxy such as Caddy in front (docs/operations.md):
# [server.tls]
# cert_file = "/etc/stockd/tls/fullchain.pem"   # certbot's files, copied by a deploy hook
# key_file = "/etc/stockd/tls/privkey.pem"

[storage]
path = {data}

# Snapshots while the daemon runs (restore: docs/operations.md).
[backup]
dir = {backups}
interval_seconds = 3600           # one an hour; POST /admin/backup or `stockd backup` any time
keep = {keep}                         # the newest {keep} are kept

# The admin token `stockd init` printed once: only its SHA-256 is here. Give each client
# its own narrower token: `stockd token new --name pos --scopes inventory:read,inventory:write`.
[[tokens]]
name = "admin"
sha256 = "{token_hash}"
scopes = ["admin"]
"#
    ))
}

#[cfg(test)]
mod init_tests {
    #[test]
    fn the_init_config_parses_and_holds_one_admin_token() {
        let dir = std::path::Path::new("/srv/shop \"stock\"");
        let text = super::init_config(dir, &"ab".repeat(32)).unwrap_or_default();
        let config = crate::config::Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.storage.path, dir.join("stockd.redb"));
        assert_eq!(config.backup_dir(), dir.join("backups"));
        assert_eq!(config.tokens.len(), 1);
        assert_eq!(config.tokens[0].scopes, ["admin"]);
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;

    /// Every flag and argument of every command says what it is (issue 10, item 19).
    #[test]
    fn every_argument_has_help() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(arg.get_help().is_some(), "`{path} --{id}` has no help");
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&Cli::command(), "stockd");
    }
}
