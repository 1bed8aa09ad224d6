//! Integration tests of the device plane over real TLS sockets, with the real firmware shim.

mod device;
