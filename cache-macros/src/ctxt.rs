//! The one place errors are collected while an attribute is read and checked, so that every
//! mistake found in one pass is reported at once (serde_derive's `Ctxt`).

use std::cell::RefCell;
use std::fmt::Display;
use std::thread;

use proc_macro2::Span;
use quote::ToTokens;

/// Errors found so far. [`Ctxt::check`] must be called before it is dropped: an accumulator
/// dropped unchecked would lose errors, so it panics (a bug in this crate, not in the input).
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// An error at `span`.
    pub(crate) fn error_at(&self, span: Span, msg: impl Display) {
        self.syn_error(syn::Error::new(span, msg));
    }

    /// An error spanning the tokens of `obj`.
    pub(crate) fn error_spanned_by(&self, obj: impl ToTokens, msg: impl Display) {
        self.syn_error(syn::Error::new_spanned(obj.into_token_stream(), msg));
    }

    /// An error found by syn (or by a helper that returns `syn::Result`).
    pub(crate) fn syn_error(&self, err: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("Ctxt used after check")
            .push(err);
    }

    /// The value of `result`, or `None` after recording its error.
    pub(crate) fn ok<T>(&self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.syn_error(e)).ok()
    }

    /// All the errors, combined into one, or `Ok` when there were none.
    pub(crate) fn check(self) -> syn::Result<()> {
        let errors = self.errors.borrow_mut().take().expect("Ctxt checked twice");
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            combined.combine(e);
        }
        Err(combined)
    }

    /// `err` after every error found so far: for a mistake after which nothing more can be
    /// read.
    pub(crate) fn fail(self, err: syn::Error) -> syn::Error {
        self.syn_error(err);
        self.check().expect_err("an error was just added")
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !thread::panicking() && self.errors.borrow().is_some() {
            panic!("Ctxt dropped without check()");
        }
    }
}
