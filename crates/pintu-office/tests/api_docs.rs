//! docs/office-api.md lists every route the service serves: each `.route("PATH", …)` in
//! `src/` must appear in it, so a new endpoint cannot land undocumented.

#[test]
fn every_route_is_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("../../docs/office-api.md")).unwrap();
    let mut routes = Vec::new();
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for piece in text.split(".route(\"").skip(1) {
            let route = piece.split('"').next().unwrap().to_string();
            routes.push((
                path.file_name().unwrap().to_string_lossy().to_string(),
                route,
            ));
        }
    }
    assert!(routes.len() >= 8, "found the routes: {routes:?}");
    let missing: Vec<_> = routes
        .iter()
        .filter(|(_, route)| {
            !docs.contains(&format!(" {route}")) && !docs.contains(&format!(" {route}?"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from docs/office-api.md: {missing:?}"
    );
}
