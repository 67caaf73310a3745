//! The one integration-test binary: the real daemon over HTTP, and the ledger directly.

mod common;

mod api;
mod auth;
mod bad_input;
mod concurrency;
mod crash;
mod model;
mod ops;
mod partner;
