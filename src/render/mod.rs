//! Release → files. Pure: no I/O, no clock, no randomness; the same input gives the same
//! bytes. Owns the app template, the Helm and raw-manifest sources, patches and policy.
