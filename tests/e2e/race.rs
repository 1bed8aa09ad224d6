//! No double booking over HTTP: 64 clients race 2,000 attempts at one station of 30 compartments.

use lockergrid_gateway::auth::Role;
use lockergrid_tests::Deployment;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const CLIENTS: usize = 64;
const ATTEMPTS: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_clients_get_exactly_as_many_201s_as_there_are_compartments() -> anyhow::Result<()> {
    let d = Arc::new(Deployment::new().station("hot", 30).start().await?);
    let checkout = Arc::new(d.token("shop", Role::Checkout, &[])?);
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (d, checkout, next) = (d.clone(), checkout.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= ATTEMPTS {
                    return anyhow::Ok(statuses);
                }
                let (status, body) = d.reserve(&checkout, &format!("race-{n}"), "hot").await?;
                statuses.push((status, body));
            }
        }));
    }
    let mut created = Vec::new();
    let mut conflicts = 0;
    for client in clients {
        for (status, body) in client.await?? {
            match status {
                201 => created.push(body["compartment_id"].as_str().expect("id").to_owned()),
                409 => conflicts += 1,
                other => panic!("unexpected {other}: {body}"),
            }
        }
    }
    assert_eq!(created.len(), 30);
    assert_eq!(conflicts, ATTEMPTS - 30);
    created.sort();
    created.dedup();
    assert_eq!(created.len(), 30, "thirty different compartments");
    Ok(())
}
