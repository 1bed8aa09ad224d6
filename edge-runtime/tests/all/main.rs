//! Integration tests of the store against a real redb file.

mod expiry;
mod flows;
mod race;
mod support;
