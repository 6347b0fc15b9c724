//! Serves `examples/web/` (the page and its built `pkg/`) on 127.0.0.1 for trying the page by
//! hand, and prints the URL to open:
//!
//! ```text
//! cargo run -p hotdata-web-example --bin serve -- [--port 8080] [--api http://127.0.0.1:8787]
//! ```

#[cfg(not(target_arch = "wasm32"))]
#[path = "../static_files.rs"]
mod static_files;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use std::net::SocketAddr;
    let mut port = 8080u16;
    let mut api = "http://127.0.0.1:8787".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(p)) if p.parse::<u16>().is_ok() => port = p.parse().unwrap_or(port),
            ("--api", Some(a)) => api = a,
            _ => {
                eprintln!("usage: serve [--port N] [--api URL]");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join("pkg").join("hotdata_web_example_bg.wasm").is_file() {
        eprintln!("examples/web/pkg/ is missing: run examples/web/build.sh first");
        return std::process::ExitCode::FAILURE;
    }
    let server = match static_files::StaticServer::start(root, SocketAddr::from(([127, 0, 0, 1], port))) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("serving {} on {}", root.display(), server.url());
    println!("open {}/?api={api}", server.url());
    loop {
        std::thread::park();
    }
}
