//! The one integration-test binary: the real daemon over HTTP, and the ledger directly.

mod common;

mod analytics;
mod api;
mod auth;
mod bad_input;
mod bulk;
mod cli_config;
mod concurrency;
mod crash;
mod dialects;
mod edge;
mod feed;
mod model;
mod nats;
mod openapi;
mod ops;
mod partner;
mod production;
mod reservations;
mod seed_clients;
mod slow_bodies;
mod store_model;
mod ui;
mod visibility;
mod wal;
mod webhooks;
