//! stub
pub mod tracker;
