#![doc = include_str!("../README.md")]
#![recursion_limit = "256"]

pub mod churn;
pub mod config;
mod control;
mod entra;
mod error;
mod graph;
pub mod json;
mod jwt;
pub mod model;
pub mod rng;
pub mod seed;
mod server;
mod state;
mod tls;

pub use config::{EmulatorConfig, TenantSize, ThrottleMode};
pub use error::Error;
pub use server::{AppCredentials, Emulator, TenantInfo};
