//! One module per `hostctl` command. Each exposes `Args` (clap) and `run`.

pub mod addons;
pub mod certs;
pub mod charts;
pub mod completion;
pub mod daemon;
pub mod doctor;
pub mod down;
pub mod drill;
pub mod etcd;
pub mod init;
pub mod kubeconfig;
pub mod logs;
pub mod mirrors;
pub mod recover;
pub mod render;
pub mod status;
pub mod storage;
pub mod supervise;
pub mod up;
pub mod validate;
pub mod vault;
pub mod verify;
