//! Where an exported plugin value lives between calls.
//!
//! A component instance is single-threaded and the host calls it one call at
//! a time, so the plugin value is kept in a thread-local cell, created by
//! `init` and borrowed mutably by every later call.

use std::any::Any;
use std::cell::RefCell;

thread_local! {
    static PLUGIN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Stores the plugin value built by `init`, replacing any earlier one.
#[doc(hidden)]
pub fn install<T: 'static>(plugin: T) {
    PLUGIN.with(|cell| *cell.borrow_mut() = Some(Box::new(plugin)));
}

/// Runs `f` on the installed plugin value.
///
/// Panics (a trap, which the host reports and recovers from) if `init` has
/// not run or installed another type: both are host bugs, not plugin bugs.
#[doc(hidden)]
pub fn with<T: 'static, R>(f: impl FnOnce(&mut T) -> R) -> R {
    PLUGIN.with(|cell| {
        let mut slot = cell.borrow_mut();
        let plugin = slot
            .as_mut()
            .and_then(|p| p.downcast_mut::<T>())
            .expect("sluice plugin called before init");
        f(plugin)
    })
}
