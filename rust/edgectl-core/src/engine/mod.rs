//! Scan engine (issue 6): process image in, soft sensor and control blocks, outputs out.
