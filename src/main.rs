use std::process::ExitCode;

use clap::Parser;

/// Allocation is on every request's path (bodies, JSON, keys): see Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option numbers (`enum mi_option_e` of the mimalloc 3 that libmimalloc-sys
/// builds): the crate exports the function but not these two constants.
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// The daemon's freed memory goes back to the OS at once instead of after mimalloc's
/// default delay: under load the delayed pages added ~100 MiB of RSS (324 MiB against 179
/// MiB with the same figures otherwise; the target is 256 MiB), for no measured speed.
/// One-shot commands keep the default: `stockd import` of 40,000 rows spent ~10 % of its
/// time faulting in and zeroing pages it had just given back.
fn return_freed_memory_promptly() {
    // SAFETY: plain option setters of the linked allocator, called before any thread starts
    // (parsing the command line starts none).
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
}

fn main() -> ExitCode {
    let cli = stockd::cli::Cli::parse();
    if matches!(cli.command, stockd::cli::Commands::Serve { .. }) {
        return_freed_memory_promptly();
    }
    stockd::telemetry::init_logs(cli.log_format);
    let code = stockd::cli::run(cli);
    stockd::telemetry::flush_logs();
    code
}
