#![doc = include_str!("../README.md")]

mod batch;
mod client;
mod delta;
mod error;
mod http;
mod list;
pub mod models;

pub use batch::{BatchRequest, BatchResponse, MAX_BATCH_REQUESTS};
pub use client::{GraphClient, GraphClientOptions, GraphStats, RetryPolicy};
pub use delta::{
    DeltaChange, DeltaPage, DeltaRound, DeltaStart, DeltaStream, MemberChange, MemberChangeKind,
    RemovedReason,
};
pub use error::Error;
pub use list::{ListQuery, Page, PageStream, collect};
