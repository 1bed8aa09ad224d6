//! The worlds are read from `wit/` by `wit_bindgen::generate!`, which cargo does not see as an
//! input: a change to the WIT files must rebuild the SDK, and with it every plugin.

fn main() {
    println!("cargo:rerun-if-changed=../../wit");
}
