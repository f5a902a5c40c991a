//! Liveness and readiness state, shared between the pipeline (writer) and the HTTP endpoints.
//!
//! Ready means: partitions are assigned (or the group is stable with nothing to assign), the
//! broker is reachable, the circuit is not open and delivery is not halted. Each "not ready"
//! carries a reason for the `/readyz` JSON body.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Health {
    assigned: AtomicUsize,
    joined: AtomicBool,
    circuit_open: AtomicBool,
    halted: Mutex<Option<String>>,
    config_error: Mutex<Option<String>>,
    broker_error: Mutex<Option<String>>,
}

fn set(slot: &Mutex<Option<String>>, v: Option<String>) {
    if let Ok(mut g) = slot.lock() {
        *g = v;
    }
}

fn get(slot: &Mutex<Option<String>>) -> Option<String> {
    slot.lock().ok().and_then(|g| g.clone())
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    pub fn set_assigned(&self, n: usize) {
        self.assigned.store(n, Ordering::Relaxed);
        self.joined.store(true, Ordering::Relaxed);
        if n > 0 {
            set(&self.broker_error, None);
        }
    }

    pub fn assigned(&self) -> usize {
        self.assigned.load(Ordering::Relaxed)
    }

    pub fn set_circuit_open(&self, open: bool) {
        self.circuit_open.store(open, Ordering::Relaxed);
    }

    pub fn set_halted(&self, why: Option<String>) {
        set(&self.halted, why);
    }

    pub fn set_config_error(&self, why: Option<String>) {
        set(&self.config_error, why);
    }

    pub fn set_broker_error(&self, why: Option<String>) {
        set(&self.broker_error, why);
    }

    pub fn mark_broker_ok(&self) {
        set(&self.broker_error, None);
    }

    /// `Ok(())` when ready, else the reason.
    pub fn readiness(&self) -> Result<(), String> {
        if let Some(h) = get(&self.halted) {
            return Err(format!("halted: {h}"));
        }
        if let Some(c) = get(&self.config_error) {
            return Err(format!("MCM configuration error: {c}"));
        }
        if self.circuit_open.load(Ordering::Relaxed) {
            return Err("circuit open: MCM is failing, consumption paused".into());
        }
        if !self.joined.load(Ordering::Relaxed) {
            return Err("not yet joined the consumer group".into());
        }
        if self.assigned() == 0 {
            if let Some(b) = get(&self.broker_error) {
                return Err(format!("broker unreachable: {b}"));
            }
        }
        Ok(())
    }
}
