//! The `deepsent` command: parses flags, calls the library, prints results.

mod cli;

// Training allocates and frees blobs of hundreds of MB every layer; glibc's
// allocator hands each back to the kernel and faults it in again (a third of
// a SqueezeNet training step went to the kernel). mimalloc reuses them, and
// returns freed memory to the system after a delay (its default, 1 s): never
// returning it was faster still, but raised CaffeNet's peak memory by a third.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
