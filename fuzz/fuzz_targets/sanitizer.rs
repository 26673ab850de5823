//! Fuzz target `sanitizer`: see `kuvert_fuzz::sanitizer` for the property it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kuvert_fuzz::sanitizer(data));
