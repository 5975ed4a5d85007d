//! A simulated DNP3 outstation (feature `sim`).
