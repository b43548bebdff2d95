//! docs/office-api.md lists every route the service serves: each `.route("PATH", …)` in
//! `src/api/` must appear in it, so a new endpoint cannot land undocumented.

#[test]
fn every_route_is_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("../../docs/office-api.md")).unwrap();
    let mut routes = Vec::new();
    for entry in std::fs::read_dir(root.join("src/api")).unwrap() {
        let path = entry.unwrap().path();
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
