//! The lock as the door task holds it: secured with retries, and secured again if the task
//! unwinds from a panic. The safe state comes from the wiring first; this is the software half.

use std::time::Duration;

use crate::door::hw::{HwError, Lock};

/// How many times securing the lock is tried before pintud gives up and stops for a restart.
pub(crate) const SECURE_ATTEMPTS: u32 = 3;

/// Secures `lock`, trying [`SECURE_ATTEMPTS`] times a few milliseconds apart: a relay driver
/// that fails once (a GPIO ioctl interrupted, a busy line) should not leave the door open. The
/// pause blocks the door task briefly, which is acceptable on this fault path only.
pub(crate) fn secure_with_retries(lock: &mut dyn Lock) -> Result<(), HwError> {
    let mut attempt = 1;
    loop {
        match lock.secure() {
            Ok(()) => return Ok(()),
            Err(e) if attempt < SECURE_ATTEMPTS => {
                tracing::warn!(attempt, "securing the lock failed: {e}; trying again");
                std::thread::sleep(Duration::from_millis(20));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Owns the lock for the door task and secures it when dropped, so a panic unwinding through the
/// door task still leaves the door locked. (After SIGKILL or power loss only the wiring can.)
pub(crate) struct SecuringLock(Box<dyn Lock>);

impl SecuringLock {
    pub fn new(lock: Box<dyn Lock>) -> Self {
        SecuringLock(lock)
    }

    pub fn release(&mut self) -> Result<(), HwError> {
        self.0.release()
    }

    /// [`secure_with_retries`].
    pub fn secure(&mut self) -> Result<(), HwError> {
        secure_with_retries(&mut *self.0)
    }
}

impl Drop for SecuringLock {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.secure();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::hw::HwErrorKind;
    use std::sync::{Arc, Mutex};

    /// A lock whose `secure` fails the first `failures` times; counts the attempts.
    struct Flaky {
        failures: u32,
        secures: Arc<Mutex<u32>>,
    }

    impl Lock for Flaky {
        fn release(&mut self) -> Result<(), HwError> {
            Ok(())
        }
        fn secure(&mut self) -> Result<(), HwError> {
            let mut n = self.secures.lock().unwrap();
            *n += 1;
            if *n <= self.failures {
                return Err(HwError {
                    device: "lock".into(),
                    kind: HwErrorKind::Other,
                    message: "busy".into(),
                });
            }
            Ok(())
        }
    }

    #[test]
    fn secure_is_retried_up_to_the_limit() {
        for (failures, ok, attempts) in [(0, true, 1), (2, true, 3), (3, false, 3), (9, false, 3)] {
            let secures = Arc::new(Mutex::new(0));
            let mut lock = Flaky {
                failures,
                secures: secures.clone(),
            };
            assert_eq!(
                secure_with_retries(&mut lock).is_ok(),
                ok,
                "{failures} failures"
            );
            assert_eq!(*secures.lock().unwrap(), attempts, "{failures} failures");
        }
    }

    #[test]
    fn a_panic_while_holding_the_lock_secures_it() {
        let secures = Arc::new(Mutex::new(0));
        let lock = SecuringLock::new(Box::new(Flaky {
            failures: 0,
            secures: secures.clone(),
        }));
        let held = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _lock = lock;
            panic!("door task panics");
        }));
        assert!(held.is_err());
        assert_eq!(*secures.lock().unwrap(), 1, "secured while unwinding");
        // A normal drop leaves the lock to the task's own shutdown path.
        let quiet = Arc::new(Mutex::new(0));
        drop(SecuringLock::new(Box::new(Flaky {
            failures: 0,
            secures: quiet.clone(),
        })));
        assert_eq!(*quiet.lock().unwrap(), 0);
    }
}
