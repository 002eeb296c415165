//! Control blocks (issue 2): PID family, split range, DO cascade, pulse outputs, relay autotune,
//! tuning rules, interlocks and the loop bank. Every block takes the measured `dt_s` and never
//! reads a clock. Algorithms and constants are cited from `shared/reference/control.md`.

pub mod autotune;
pub mod bank;
pub mod cascade;
pub mod feed;
pub mod interlock;
pub mod pid;
pub mod pulse;
pub mod split_range;
pub mod tuning;
pub mod velocity;

pub use autotune::{
    fopdt_from_relay, RelayAutotune, RelayResult, RelaySettings, RelayState, MIN_ASYMMETRY,
};
pub use bank::{Block, LoopBank};
pub use cascade::{CascadeStage, DoCascade, StageGains, StageUse};
pub use feed::{ExponentialFeed, StatPulser};
pub use interlock::{LadderLevel, LadderSettings, OverTempLadder};
pub use pid::{Action, AntiWindup, Components, Mode, Pid, PidSettings};
pub use pulse::{FoamPulser, FoamSettings, FoamState, PulseOutput, PulseSettings, PumpCalibration};
pub use split_range::{Side, SplitRange, SplitRangeSettings};
pub use tuning::{amigo_pi, imc_pid, simc_integrating, simc_pi, ziegler_nichols, Fopdt, Tuning};
pub use velocity::VelocityPid;
