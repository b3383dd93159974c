//! `__teardown`: everything the emulator made on this host goes, whatever
//! state it is in, and running it again changes nothing. Tests call it in
//! their cleanup (also after a failed test, so it never stops at an error).
//!
//! It takes no machine locks: a CLI call stuck in a boot must not keep the
//! cleanup from running. Records stay (machines are marked Stopped) so the
//! state directory still tells what happened; remove it afterwards.

use crate::config::{Config, Mode};
use crate::state::{MachineState, Store};
use crate::{fast, network, vm};

pub fn run(cfg: &Config) {
    let store = Store::new(&cfg.state);
    for m in store.all().unwrap_or_default() {
        let deleted = m.state == MachineState::Deleted;
        match m.mode {
            Mode::Fast => {
                if !deleted {
                    let _ = fast::shutdown(&store, &m.name);
                }
                fast::remove_links(&m);
            }
            Mode::Vm => {
                vm::kill(&store, &m.name);
                vm::remove_links(&m);
            }
        }
        if !deleted {
            let _ = store.update(&m.name, |r| {
                r.state = MachineState::Stopped;
                r.lease = None;
            });
        }
    }
    network::remove(&store);
}
