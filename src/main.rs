//! The `deepsent` command: parses flags, calls the library, prints results.

mod cli;

// Training allocates and frees blobs of hundreds of MB every layer; glibc's
// allocator hands each back to the kernel and faults it in again (a third of
// a SqueezeNet training step went to the kernel). mimalloc, told to keep what
// is freed (`keep_freed_memory`), reuses them: training runs up to twice as
// fast as with its default purge delay of 1 s, for a higher peak memory
// (CaffeNet +35 % over glibc; `MIMALLOC_PURGE_DELAY=1000` trades back).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`, by its position in `mi_option_e` (the
/// 16th option of the mimalloc bundled with libmimalloc-sys 0.1, which does
/// not name it; `MIMALLOC_VERBOSE=1` lists the options in that order).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: options may be set at any time; this one only decides when
        // freed pages go back to the system (-1: never).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

/// A reader that stops early (`deepsent surgery --list | head -1`) ends the
/// program quietly, as it ends other Unix tools: Rust ignores SIGPIPE, and
/// the next print would panic on the broken pipe.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: restoring a signal's default disposition before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> std::process::ExitCode {
    end_quietly_on_a_closed_pipe();
    keep_freed_memory();
    cli::main()
}
