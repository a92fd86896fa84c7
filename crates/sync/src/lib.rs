#![doc = include_str!("../README.md")]

pub mod credentials;
mod error;

pub use error::Error;
