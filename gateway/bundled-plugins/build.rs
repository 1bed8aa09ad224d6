//! Builds the default plugins, and only those, from `plugins/`.

fn main() {
    lockergrid_guest_build::build(&[
        "reservation-balanced",
        "notify-multichannel",
        "site-rules-standard",
    ]);
}
