//! Tests only (see `tests/`): the SDK built without the `arrow` feature. Run this package on
//! its own (`cargo test -p hotdata-no-arrow-tests`): in a workspace-wide build another member
//! turns `arrow` on, and the tests would see that build instead.
