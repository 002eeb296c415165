//! Control blocks (issue 2): PID family, split range, DO cascade, pulse outputs, relay autotune,
//! loop bank. Every block takes the measured `dt_s` and never reads a clock.
