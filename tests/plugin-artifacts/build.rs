//! Builds the misbehaving plugins of `plugins/` that the containment tests load.

fn main() {
    lockergrid_guest_build::build(&[
        "misbehave-loop",
        "misbehave-trap",
        "misbehave-recursion",
        "misbehave-unknown-station",
        "misbehave-huge-answer",
        "misbehave-memory",
        "misbehave-site-trap",
    ]);
}
