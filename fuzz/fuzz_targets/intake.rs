//! Fuzz target `intake`: see `kuvert_fuzz::intake` for the property it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kuvert_fuzz::intake(data));
