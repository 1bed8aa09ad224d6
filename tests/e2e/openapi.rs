//! The OpenAPI document matches the live router: every documented operation answers, and every
//! method a documented path does not list is refused with 405.

use lockergrid_tests::Deployment;
use reqwest::Method;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn every_documented_operation_exists_and_nothing_else_on_those_paths() -> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 30).start().await?;
    let (status, doc) = d
        .send(d.http.get(format!("{}/openapi.json", d.base)))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 12);
    for (path, item) in paths {
        let url = format!("{}{}", d.base, path.replace("{id}", "st-a"));
        for method in METHODS {
            let documented = item.get(method).is_some();
            let m = Method::from_bytes(method.to_uppercase().as_bytes())?;
            let (status, body) = d.send(d.http.request(m, &url)).await?;
            if documented {
                assert_ne!(status, 405, "{method} {path} is documented but not routed");
                assert!(
                    !body["detail"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("no route")),
                    "{method} {path} is documented but not routed"
                );
                let op = &item[method];
                if op.get("security").is_some() {
                    assert_eq!(status, 401, "{method} {path} must require a token");
                }
            } else {
                assert_eq!(status, 405, "{method} {path} is routed but not documented");
                assert_eq!(body["type"], "urn:lockergrid:problem:method-not-allowed");
            }
        }
    }
    let (status, body) = d
        .send(d.http.get(format!("{}/v1/nothing-here", d.base)))
        .await?;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "urn:lockergrid:problem:not-found");
    d.stop().await
}
