//! `onetrip dashboard`: serves the dashboard of a database on loopback and prints a link that
//! signs a person in with a token only that process knows; the link sets the cookie, the pages
//! open with it, and another token in the link opens nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_dashboard_command_signs_in_by_its_link() {
    let db = std::env::temp_dir().join(format!("onetrip-dashboard-cli-{}.db", std::process::id()));
    let db = db.display().to_string();
    let demo = Command::new(env!("CARGO_BIN_EXE_onetrip")).args(["demo", "--db", &db]).output().expect("demo runs");
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));

    let mut child = Command::new(env!("CARGO_BIN_EXE_onetrip"))
        .args(["dashboard", "--db", &db, "--no-browser"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("dashboard starts");
    let stderr = child.stderr.take().expect("stderr");
    let _guard = Killed(child);
    let mut first = String::new();
    BufReader::new(stderr).read_line(&mut first).expect("a line");
    let link = first.split_whitespace().find(|w| w.starts_with("http://")).expect("a link").to_string();
    let base = link.split("/signin").next().expect("base").to_string();

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let answer = client.get(&link).send().await.expect("answers");
    assert_eq!(answer.status(), 303);
    let cookie = answer.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_string();
    let page = client.get(format!("{base}/")).header("cookie", &cookie).send().await.expect("answers");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("开办企业一件事"), "the demo's process on the overview");

    let forged = link.replace("token=ot_", "token=ot_0");
    assert_eq!(client.get(&forged).send().await.expect("answers").status(), 401);
    assert_eq!(client.get(format!("{base}/")).send().await.expect("answers").status(), 303, "no cookie: sign in");
    // It serves the pages only: no API, so nothing can be written through it.
    let api = client.get(format!("{base}/stalls")).header("cookie", &cookie).send().await.expect("answers");
    assert_eq!(api.status(), 404);
}
