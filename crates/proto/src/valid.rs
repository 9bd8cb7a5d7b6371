//! Settings checked once: a [`Valid<T>`] is a `T` that passed its rules.
//!
//! ```text
//!   DetectorConfig ──check──► Valid<DetectorConfig> ──► Detector::new
//!   GateConfig ──check(&Valid<DetectorConfig>)──► Valid<GateConfig> ──► Gate::new
//! ```
//!
//! Each settings type states its rules once ([`Rules`]); the only way to a `Valid<T>` is
//! through them, and a `Valid<T>` hands out only shared access, so a constructor that takes
//! one needs no check of its own. A broken rule is an error that names the setting at fault
//! and its value ([`FieldError`]), relative to the checked type; whoever composes settings
//! into a larger whole (a configuration file) puts its own prefix in front.

use std::ops::Deref;

/// The rules of a settings type: what [`Valid::check`] runs.
pub trait Rules: Sized {
    /// What the rules compare against beyond the value itself: settings of another part that
    /// a rule relates to (`()` when none).
    type Context: ?Sized;
    /// The first broken rule.
    type Error;

    /// Checks every rule; the first one broken is reported.
    fn check_rules(&self, context: &Self::Context) -> Result<(), Self::Error>;
}

/// A value that passed every rule of its type. Only [`Valid::check`] makes one; it derefs
/// to the value and never lends it mutably, so what was checked stays as it was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid<T>(T);

impl<T: Rules> Valid<T> {
    /// `value`, if it passes every rule of its type against `context`.
    pub fn check(value: T, context: &T::Context) -> Result<Self, T::Error> {
        value.check_rules(context)?;
        Ok(Valid(value))
    }
}

impl<T> Valid<T> {
    /// The checked value, to change and check again.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Valid<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A broken rule that names the setting at fault: its path below the checked type
/// (`lease`, `gossip.fence_hold`) and its value. `Display` says the rule.
pub trait FieldError: std::error::Error {
    /// The setting at fault, as a dotted path below the checked type.
    fn field(&self) -> String;
    /// Its value, as a person would write it (`700ms`, `0.6`); empty when the rule concerns
    /// no single value.
    fn value(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Even(u32);

    impl Rules for Even {
        type Context = u32;
        type Error = String;

        fn check_rules(&self, below: &u32) -> Result<(), String> {
            if self.0 % 2 != 0 || self.0 >= *below {
                return Err(format!("{} must be even and below {below}", self.0));
            }
            Ok(())
        }
    }

    #[test]
    fn only_values_that_pass_their_rules_become_valid() {
        assert_eq!(Valid::check(Even(4), &10).map(|v| (*v).0), Ok(4));
        assert_eq!(Valid::check(Even(3), &10), Err("3 must be even and below 10".to_owned()));
        assert_eq!(Valid::check(Even(12), &10), Err("12 must be even and below 10".to_owned()));
        assert_eq!(Valid::check(Even(8), &10).map(Valid::into_inner), Ok(Even(8)));
    }
}
