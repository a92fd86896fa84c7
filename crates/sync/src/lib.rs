#![doc = include_str!("../README.md")]

pub mod credentials;
mod engine;
mod error;
pub mod plan;
mod report;

pub use engine::SyncEngine;
pub use error::Error;
pub use report::{
    Completeness, Mode, ProgressEvent, Resource, ResourceReport, RunReport, SyncOptions, SyncType,
};
