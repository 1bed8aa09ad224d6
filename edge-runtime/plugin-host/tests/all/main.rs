//! Integration tests of the plugin host with the real components built from `plugins/`.

mod plugins;
