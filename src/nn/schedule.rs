//! Which time step a direction reads at each processing step, whether that
//! step is real or padding, and where its output goes: the one place where
//! PyTorch's and Keras' masking rules differ.

use super::config::{Framework, RnnConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Forward,
    /// PyTorch's backward direction on packed sequences: starts at each
    /// sequence's last real step.
    ReverseWithinLength,
    /// Keras `go_backwards`: reverses the whole padded sequence.
    ReverseFull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Output k is the k-th processed step (Keras `go_backwards`).
    Processing,
    /// Output at the time step that was read (PyTorch).
    Time,
    /// Processing order flipped over the full length (Keras `Bidirectional`).
    Flipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskedOutput {
    /// PyTorch packed sequences; Keras `Bidirectional` with return_sequences.
    Zero,
    /// A plain Keras layer repeats the previous output (zeros before the
    /// first real step).
    Previous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub order: Order,
    pub placement: Placement,
    pub masked: MaskedOutput,
}

impl Schedule {
    pub fn for_direction(cfg: &RnnConfig, dir: usize) -> Self {
        match cfg.framework {
            Framework::Pytorch => Schedule {
                order: if dir == 0 {
                    Order::Forward
                } else {
                    Order::ReverseWithinLength
                },
                placement: Placement::Time,
                masked: MaskedOutput::Zero,
            },
            Framework::Keras if !cfg.bidirectional => Schedule {
                order: if cfg.go_backwards {
                    Order::ReverseFull
                } else {
                    Order::Forward
                },
                placement: Placement::Processing,
                masked: MaskedOutput::Previous,
            },
            Framework::Keras => {
                // Bidirectional runs a copy of the layer with go_backwards
                // flipped, then flips that copy's outputs back; it forces
                // zeros at masked steps only when returning sequences.
                let backwards = cfg.go_backwards != (dir == 1);
                Schedule {
                    order: if backwards {
                        Order::ReverseFull
                    } else {
                        Order::Forward
                    },
                    placement: if dir == 1 {
                        Placement::Flipped
                    } else {
                        Placement::Processing
                    },
                    masked: if cfg.return_sequences {
                        MaskedOutput::Zero
                    } else {
                        MaskedOutput::Previous
                    },
                }
            }
        }
    }

    /// The time step read at processing step `k` of a sequence of `len`
    /// real steps out of `steps`, and whether it is a real step.
    #[inline(always)]
    pub fn step(&self, k: usize, len: usize, steps: usize) -> (usize, bool) {
        match self.order {
            Order::Forward => (k, k < len),
            Order::ReverseWithinLength => {
                if k < len {
                    (len - 1 - k, true)
                } else {
                    (k, false)
                }
            }
            Order::ReverseFull => {
                let t = steps - 1 - k;
                (t, t < len)
            }
        }
    }

    /// Output position of processing step `k`, which read time step `t`.
    #[inline(always)]
    pub fn position(&self, k: usize, t: usize, steps: usize) -> usize {
        match self.placement {
            Placement::Processing => k,
            Placement::Time => t,
            Placement::Flipped => steps - 1 - k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_backward_starts_at_last_real_step() {
        let s = Schedule::for_direction(
            &RnnConfig::lstm(1, 1).with_bidirectional(super::super::MergeMode::Concat),
            1,
        );
        // len 3 of 5: reads 2,1,0 then padding 3,4
        let read: Vec<_> = (0..5).map(|k| s.step(k, 3, 5)).collect();
        assert_eq!(
            read,
            vec![(2, true), (1, true), (0, true), (3, false), (4, false)]
        );
    }

    #[test]
    fn keras_go_backwards_starts_at_padded_end() {
        let s = Schedule::for_direction(&RnnConfig::lstm(1, 1).keras().with_go_backwards(true), 0);
        let read: Vec<_> = (0..4).map(|k| s.step(k, 2, 4)).collect();
        assert_eq!(read, vec![(3, false), (2, false), (1, true), (0, true)]);
        assert_eq!(
            s.position(0, 3, 4),
            0,
            "plain go_backwards returns processing order"
        );
    }
}
