//! The `openai` adapter over real HTTP on 127.0.0.1: against `clarity-serve-model` (fake and
//! builtin models) and against scripted servers that fail on purpose.

mod api_key;
mod builtin;
mod common;
mod config;
mod faults;
mod serve_model;
mod vllm;
