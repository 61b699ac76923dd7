//! Resolves a PQL query through PuppetDB exactly as kick does for `--query` (paged by
//! certname, sorted, deduplicated) and prints how many certnames it answered; used by
//! `make bench` against curl fetching the same answer.
//!
//! `cargo run --release -p orchestrator-client --example pql -- URL 'PQL' [page size]`

use std::time::Duration;

use orchestrator_client::puppetdb::{DEFAULT_PAGE_SIZE, PuppetDb, PuppetDbSettings};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(pql)) = (args.next(), args.next()) else {
        eprintln!("usage: pql URL 'PQL' [page size]");
        std::process::exit(2);
    };
    let page_size = args
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let settings = PuppetDbSettings {
        server_urls: vec![url],
        cacert: None,
        cert: None,
        key: None,
        token_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(60),
        page_size,
    };
    let (db, _) = PuppetDb::new(&settings).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    match db.certnames(&pql).await {
        Ok(names) => println!("{}", names.len()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
