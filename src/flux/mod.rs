//! The few Flux types Tumbler reads, with only the fields it needs.
