//! Fuzz target `attachment_name`: see `kuvert_fuzz::attachment_name` for the property it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kuvert_fuzz::attachment_name(data));
