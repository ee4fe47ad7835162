//! Lockout: after [`MAX_FAILURES`] failed attempts within [`WINDOW`] for one identity (verify)
//! or for the kiosk (identify, enroll), attempts are refused until the window has passed, and
//! the person is sent to the non-biometric fallback (a staff member).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Failures allowed within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(180);

/// Whose attempts are counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The whole kiosk.
    Kiosk,
    /// One claimed identity.
    Identity(String),
}

/// Failure counts per scope.
#[derive(Debug, Default)]
pub struct Lockout {
    failures: HashMap<Scope, VecDeque<Instant>>,
}

impl Lockout {
    /// Records a failure at `now`.
    pub fn fail(&mut self, scope: Scope, now: Instant) {
        let list = self.failures.entry(scope).or_default();
        list.push_back(now);
        while list.len() > MAX_FAILURES {
            list.pop_front();
        }
    }

    /// Whether `scope` (or the kiosk) is locked at `now`.
    pub fn locked(&mut self, scope: &Scope, now: Instant) -> bool {
        let mut check = |s: &Scope| {
            let Some(list) = self.failures.get_mut(s) else {
                return false;
            };
            while list
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                list.pop_front();
            }
            list.len() >= MAX_FAILURES
        };
        check(&Scope::Kiosk) || (*scope != Scope::Kiosk && check(scope))
    }

    /// Forgets the failures of `scope` (after a success).
    pub fn clear(&mut self, scope: &Scope) {
        self.failures.remove(scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_three_minutes_lock_that_identity_only() {
        let mut lockout = Lockout::default();
        let t0 = Instant::now();
        let alice = Scope::Identity("alice".into());
        for i in 0..4 {
            lockout.fail(alice.clone(), t0 + Duration::from_secs(i * 10));
        }
        assert!(!lockout.locked(&alice, t0 + Duration::from_secs(50)));
        lockout.fail(alice.clone(), t0 + Duration::from_secs(60));
        assert!(lockout.locked(&alice, t0 + Duration::from_secs(61)));
        assert!(!lockout.locked(&Scope::Identity("bob".into()), t0 + Duration::from_secs(61)));
        // The first failure leaves the window at t0 + 180 s.
        assert!(!lockout.locked(&alice, t0 + Duration::from_secs(181)));
    }

    #[test]
    fn a_locked_kiosk_locks_every_identity() {
        let mut lockout = Lockout::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            lockout.fail(Scope::Kiosk, t0);
        }
        assert!(lockout.locked(&Scope::Identity("anyone".into()), t0));
        lockout.clear(&Scope::Kiosk);
        assert!(!lockout.locked(&Scope::Kiosk, t0));
    }
}
