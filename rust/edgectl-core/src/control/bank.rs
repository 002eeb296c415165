//! A bank of control blocks stepped together: one call per scan (DESIGN "Engine"; reference
//! §8.5 rule 3: Python swaps parameters, the loop runs in one native call).
//!
//! Each block takes one measurement and writes one or more outputs into a flat output slice:
//! a PID writes 1, a PID with split range writes 2 (low, high), a DO cascade writes one value
//! per stage. All inputs are validated before any block is stepped, so a bad value leaves the
//! whole bank untouched.

use super::cascade::DoCascade;
use super::pid::Pid;
use super::split_range::SplitRange;
use crate::error::{check_dt, CoreError, CoreResult};

/// One block of a [`LoopBank`].
#[derive(Debug, Clone)]
pub enum Block {
    /// A PID: one output.
    Pid(Pid),
    /// A PID feeding a split range: outputs (low, high).
    SplitPid(Pid, SplitRange),
    /// A DO cascade with its master: one output per stage.
    Cascade(Pid, DoCascade),
}

impl Block {
    /// Number of outputs the block writes.
    pub fn n_outputs(&self) -> usize {
        match self {
            Block::Pid(_) => 1,
            Block::SplitPid(..) => 2,
            Block::Cascade(_, c) => c.stages().len(),
        }
    }

    /// The block's PID (the master for a cascade).
    pub fn pid(&self) -> &Pid {
        match self {
            Block::Pid(p) | Block::SplitPid(p, _) | Block::Cascade(p, _) => p,
        }
    }

    /// Mutable access to the block's PID, for live tuning.
    pub fn pid_mut(&mut self) -> &mut Pid {
        match self {
            Block::Pid(p) | Block::SplitPid(p, _) | Block::Cascade(p, _) => p,
        }
    }

    /// Step the block (inputs already validated); write its outputs into `out`.
    #[inline]
    pub fn step(&mut self, y: f64, dt_s: f64, out: &mut [f64]) -> CoreResult<()> {
        match self {
            Block::Pid(p) => out[0] = p.update(y, dt_s)?,
            Block::SplitPid(p, s) => {
                let u = p.update(y, dt_s)?;
                let (lo, hi) = s.update(u, dt_s)?;
                out[0] = lo;
                out[1] = hi;
            }
            Block::Cascade(p, c) => {
                let pos = c.update(p, y, dt_s)?;
                out.copy_from_slice(pos);
            }
        }
        Ok(())
    }
}

/// Named blocks stepped in one call.
#[derive(Debug, Clone, Default)]
pub struct LoopBank {
    names: Vec<String>,
    blocks: Vec<Block>,
    offsets: Vec<usize>,
    n_out: usize,
}

impl LoopBank {
    /// An empty bank.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a block under a unique name; returns its index.
    pub fn add(&mut self, name: &str, block: Block) -> CoreResult<usize> {
        if self.names.iter().any(|n| n == name) {
            return Err(CoreError::InvalidConfig(format!(
                "loop bank already has a block named {name:?}"
            )));
        }
        self.names.push(name.to_owned());
        self.offsets.push(self.n_out);
        self.n_out += block.n_outputs();
        self.blocks.push(block);
        Ok(self.blocks.len() - 1)
    }

    /// Number of blocks (= number of measurements per step).
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when the bank has no block.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Total number of outputs per step.
    pub fn n_outputs(&self) -> usize {
        self.n_out
    }

    /// Block names in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Index of a block by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Offset of block `i`'s first output in the output slice.
    pub fn offset(&self, i: usize) -> usize {
        self.offsets[i]
    }

    /// A block by index.
    pub fn block(&self, i: usize) -> Option<&Block> {
        self.blocks.get(i)
    }

    /// A block by index, mutable (live tuning).
    pub fn block_mut(&mut self, i: usize) -> Option<&mut Block> {
        self.blocks.get_mut(i)
    }

    /// A block by name, mutable.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Block> {
        let i = self.index(name)?;
        self.blocks.get_mut(i)
    }

    /// Check one scan's inputs without stepping.
    pub fn validate(&self, measurements: &[f64], dt_s: f64, out_len: usize) -> CoreResult<()> {
        check_dt(dt_s)?;
        if measurements.len() != self.blocks.len() {
            return Err(CoreError::ShapeMismatch {
                what: "measurements",
                expected: self.blocks.len(),
                got: measurements.len(),
            });
        }
        if out_len != self.n_out {
            return Err(CoreError::ShapeMismatch {
                what: "outputs",
                expected: self.n_out,
                got: out_len,
            });
        }
        if let Some(y) = measurements.iter().find(|y| !y.is_finite()) {
            return Err(CoreError::NonFinite {
                name: "measurement",
                value: *y,
            });
        }
        Ok(())
    }

    /// Step every block with its measurement; outputs go to `out` (length [`Self::n_outputs`]).
    pub fn step(&mut self, measurements: &[f64], dt_s: f64, out: &mut [f64]) -> CoreResult<()> {
        self.validate(measurements, dt_s, out.len())?;
        for ((b, &y), &o) in self
            .blocks
            .iter_mut()
            .zip(measurements.iter())
            .zip(self.offsets.iter())
        {
            let n = b.n_outputs();
            b.step(y, dt_s, &mut out[o..o + n])?;
        }
        Ok(())
    }
}
