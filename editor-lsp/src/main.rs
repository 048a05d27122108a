//! `onetrip-lsp`: the language server over stdio.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("onetrip-lsp {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let stdio = editor_lsp::transport::stdio();
    editor_lsp::run(stdio.sender, stdio.receiver, editor_lsp::Config::default());
    // Dropping our end lets the writer finish the last answers.
    let _ = stdio.writer.join();
    // The reader may still block on stdin: the process exits without waiting for it.
    drop(stdio.reader);
}
