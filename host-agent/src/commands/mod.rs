//! One module per `hostctl` command. Each exposes `Args` (clap) and `run`.

pub mod completion;
