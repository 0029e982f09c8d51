//! The `deepsent` command: parses flags, calls the library, prints results.

mod cli;

// Training allocates and frees blobs of hundreds of MB every layer; the system
// allocator hands them back to the kernel each time and faults them in again
// (a third of a training step went to the kernel). mimalloc, told never to
// purge freed memory (see `keep_freed_memory`), reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`,
/// mimalloc.h v2, which libmimalloc-sys 0.1 does not name): -1 never purges.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn keep_freed_memory() {
    // SAFETY: setting an option is allowed at any time; it only changes when
    // freed pages go back to the OS. An explicit MIMALLOC_PURGE_DELAY wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    cli::main()
}
