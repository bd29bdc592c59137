//! Progress on a terminal for long runs: a bar on stderr counting the bytes scored, drawn only
//! when stderr is a terminal and the work is large enough to be worth watching.

use std::io::IsTerminal;
use std::ops::Range;

use bltpatch::{EntropyModel, EntropyStream};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Work below this many bytes (of scoring) draws no bar: it is over in moments.
const MIN_BYTES: u64 = 16 << 20;
/// Bytes a streaming position counts for before it reports them to the bar.
const STREAM_STEP: u64 = 1 << 16;

/// A progress bar over bytes of scoring work, or nothing. Cheap to update from many threads.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar for `total` bytes of work labelled `what`, if stderr is a terminal and `total` is
    /// large; otherwise a no-op.
    pub fn new(what: &str, total: u64) -> Self {
        if total < MIN_BYTES || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(what.to_string());
        Self(Some(bar))
    }

    /// `n` more bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    /// Removes the bar (before the run's own output lines).
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A model that reports every byte it scores to a [`Progress`]; its entropies are the wrapped
/// model's.
pub struct Counted<'a, M: ?Sized> {
    /// The model doing the work.
    pub model: &'a M,
    /// Where the scored bytes are counted.
    pub progress: &'a Progress,
}

impl<M: EntropyModel + ?Sized> EntropyModel for Counted<'_, M> {
    fn context(&self) -> usize {
        self.model.context()
    }

    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.model.entropies(doc, range.clone(), out);
        self.progress.inc(range.len() as u64);
    }

    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.model.surprisals(doc, range.clone(), out);
        self.progress.inc(range.len() as u64);
    }

    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        Box::new(CountedStream {
            inner: self.model.stream(),
            progress: self.progress,
            pending: 0,
        })
    }
}

/// The streaming state of a [`Counted`] model.
struct CountedStream<'a> {
    inner: Box<dyn EntropyStream + 'a>,
    progress: &'a Progress,
    pending: u64,
}

impl EntropyStream for CountedStream<'_> {
    fn entropy(&mut self) -> f32 {
        self.inner.entropy()
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn push(&mut self, byte: u8) {
        self.inner.push(byte);
        self.pending += 1;
        if self.pending == STREAM_STEP {
            self.progress.inc(self.pending);
            self.pending = 0;
        }
    }
}

impl Drop for CountedStream<'_> {
    fn drop(&mut self) {
        self.progress.inc(self.pending);
    }
}
