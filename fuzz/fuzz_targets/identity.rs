//! Fuzz target `identity`: see `kuvert_fuzz::identity` for the property it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kuvert_fuzz::identity(data));
