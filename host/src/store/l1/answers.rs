//! The component's answers to `get`, remembered by the L1 together with the
//! storage reads they were computed from.
//!
//! The component is a function of what it reads: the same entries, version
//! keys and floor give the same answer. While a call runs inside
//! [`recording`], the L1 notes every key it serves or remembers, with the
//! stamp of its entry; anything else the call does (a write, a read that went
//! to the store without being remembered, a failure, a clock read) spoils the
//! record. A remembered answer is served only while every noted entry is still
//! in the L1 with the same stamp: a write, an announcement from another
//! process, an expiry or a lost subscription removes the entry, and with it
//! every answer computed from it. The cache logic stays in the component; the
//! L1 only avoids asking it the same question twice.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache as Moka;

use super::L1Options;

tokio::task_local! {
    static READS: RefCell<Reads>;
}

/// What one component call read through the L1.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// Each key served or remembered, with its entry's stamp.
    keys: Vec<(String, u64)>,
    /// Whether the call did anything an answer cannot be remembered after.
    spoiled: bool,
}

impl Reads {
    /// The keys read, if the call did nothing but reads through the L1.
    pub(super) fn usable(self) -> Option<Arc<[(String, u64)]>> {
        (!self.spoiled).then(|| Arc::from(self.keys))
    }
}

/// Run `call`, noting what it reads through the L1.
pub(crate) async fn recording<F: Future>(call: F) -> (F::Output, Reads) {
    READS
        .scope(RefCell::new(Reads::default()), async move {
            let output = call.await;
            (output, READS.with(|r| std::mem::take(&mut *r.borrow_mut())))
        })
        .await
}

/// Note that the call being recorded read `key` from the entry stamped `stamp`.
pub(super) fn note(key: &str, stamp: u64) {
    let _ = READS.try_with(|r| r.borrow_mut().keys.push((key.to_owned(), stamp)));
}

/// Note that the call being recorded did something its answer depends on
/// beyond L1 entries: its answer is not remembered.
pub(super) fn poison() {
    let _ = READS.try_with(|r| r.borrow_mut().spoiled = true);
}

/// Which question an answer answers: a scope and a key, unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AnswerName(String);

impl AnswerName {
    /// `get(key)` on the global keyspace.
    pub(crate) fn global(key: &str) -> AnswerName {
        let mut name = String::with_capacity(1 + key.len());
        name.push('g');
        name.push_str(key);
        AnswerName(name)
    }

    /// `get(key)` in `user`'s namespace (the user's length first, so that no
    /// (user, key) pair reads as another).
    pub(crate) fn user(user: &str, key: &str) -> AnswerName {
        use std::fmt::Write as _;
        let mut name = String::with_capacity(8 + user.len() + key.len());
        // Writing into a String cannot fail.
        let _ = write!(name, "u{}:", user.len());
        name.push_str(user);
        name.push_str(key);
        AnswerName(name)
    }
}

/// A remembered answer.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub value: Option<Arc<[u8]>>,
    /// The L1 entries it was computed from (shared: a hit clones the answer).
    pub reads: Arc<[(String, u64)]>,
    /// The generation of the users' flags it was computed with.
    pub flags: u64,
}

/// Remembered answers, bounded like the L1 (a quarter of its capacity) and
/// never older than its `max_age`.
#[derive(Debug)]
pub(super) struct Answers {
    answers: Moka<AnswerName, Answer, super::KeyHasher>,
}

impl Answers {
    pub fn new(options: L1Options) -> Answers {
        let answers = Moka::builder()
            .max_capacity(options.capacity_bytes / 4)
            .weigher(|name: &AnswerName, a: &Answer| {
                let reads: usize = a.reads.iter().map(|(k, _)| k.len() + 32).sum();
                u32::try_from(name.0.len() + a.value.as_ref().map_or(0, |v| v.len()) + reads + 64)
                    .unwrap_or(u32::MAX)
            })
            .time_to_live(options.max_age.max(Duration::from_millis(1)))
            .build_with_hasher(super::KeyHasher::default());
        Answers { answers }
    }

    pub fn get(&self, name: &AnswerName) -> Option<Answer> {
        self.answers.get(name)
    }

    pub fn insert(&self, name: AnswerName, answer: Answer) {
        self.answers.insert(name, answer);
    }

    pub fn forget(&self, name: &AnswerName) {
        self.answers.invalidate(name);
    }
}
