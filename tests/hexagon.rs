//! The hexagon stays honest: `docobo-core` depends on no runtime, HTTP, database or Discord crate
//! (DESIGN §1). Checked on the real dependency graph, so a new dependency that drags one in fails
//! here rather than in review.

use std::process::Command;

const FORBIDDEN: [&str; 9] =
    ["tokio", "reqwest", "hyper", "sea-orm", "sqlx", "serenity", "poem", "mio", "rustls"];

#[test]
fn the_core_depends_on_no_io_crate() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", "docobo-core", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).expect("utf-8");
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"docobo-core"), "unexpected cargo tree output:\n{tree}");
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| crates.contains(f)).collect();
    assert!(found.is_empty(), "docobo-core depends on {found:?}:\n{tree}");
}
