//! The deployment files parse and agree with the server: probe paths are
//! its health routes, ports match the Dockerfile, selectors match labels,
//! and every model named exists in the catalogue. (No schema checker
//! installs from the registries this project reaches, so the structure is
//! checked here.)

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn manifest(name: &str) -> Yaml {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

fn s(y: &Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("not a string: {y:?}"))
}

fn check_container(c: &Yaml, what: &str) {
    for (probe, path) in [
        ("livenessProbe", "/v2/health/live"),
        ("readinessProbe", "/v2/health/ready"),
    ] {
        assert_eq!(s(&c[probe]["httpGet"]["path"]), path, "{what} {probe}");
    }
    let args: Vec<&str> = c["args"].as_vec().unwrap().iter().map(s).collect();
    for pair in args.windows(2) {
        if pair[0] == "--model" {
            assert!(
                zoo::catalog::hub_repo(pair[1]).is_some(),
                "{what}: unknown model {}",
                pair[1]
            );
        }
    }
}

#[test]
fn kubernetes_manifests_agree_with_the_server_and_each_other() {
    let dep = manifest("deployment.yaml");
    assert_eq!(s(&dep["kind"]), "Deployment");
    let pod = &dep["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(dep["spec"]["selector"]["matchLabels"], *labels);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"].as_i64(), Some(8080));
    check_container(c, "deployment");

    let svc = manifest("service.yaml");
    assert_eq!(s(&svc["kind"]), "Service");
    assert_eq!(svc["spec"]["selector"], *labels);
    assert_eq!(
        s(&svc["spec"]["ports"][0]["targetPort"]),
        s(&c["ports"][0]["name"])
    );

    let hpa = manifest("hpa.yaml");
    assert_eq!(s(&hpa["kind"]), "HorizontalPodAutoscaler");
    assert_eq!(
        s(&hpa["spec"]["scaleTargetRef"]["name"]),
        s(&dep["metadata"]["name"])
    );

    let isvc = manifest("inferenceservice.yaml");
    assert_eq!(s(&isvc["apiVersion"]), "serving.kserve.io/v1beta1");
    let c = &isvc["spec"]["predictor"]["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"].as_i64(), Some(8080));
    check_container(c, "inferenceservice");
}

#[test]
fn the_dockerfile_serves_on_the_port_the_manifests_use() {
    let d =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile"))
            .unwrap();
    assert!(d.contains("EXPOSE 8080"));
    assert!(d.contains(r#"ENTRYPOINT ["zoo", "serve", "--host", "0.0.0.0", "--port", "8080"]"#));
    assert!(
        d.contains("FROM debian:bookworm-slim"),
        "a small runtime stage"
    );
}
