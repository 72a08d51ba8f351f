//! Fuzz target: the SQL92 selector compiler and evaluator. Any input (split at the first NUL
//! into an expression and a properties string) must compile or be refused without a panic or
//! a stack overflow, and a compiled selector must evaluate against any properties bytes, and
//! evaluate the same way twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmq_broker::filter::SqlFilter;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (expression, properties) = data.split_at(split);
    let Ok(expression) = std::str::from_utf8(expression) else {
        return;
    };
    if let Ok(filter) = SqlFilter::compile(expression) {
        let first = filter.matches_properties(properties);
        assert_eq!(first, filter.matches_properties(properties));
        // The same text compiles to the same selector.
        assert_eq!(SqlFilter::compile(expression).ok().as_ref(), Some(&filter));
    }
});
