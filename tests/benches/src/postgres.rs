//! The PostgreSQL peer: the same holds, one transaction each, `SELECT … FOR UPDATE SKIP LOCKED`,
//! committed durably (`synchronous_commit = on`, fsync on). A partial index over the free
//! compartments in id order lets each hold read one index entry instead of sorting a station.

use crate::latency::{Report, drive};
use crate::workloads::{COMPARTMENTS, STATIONS, station_name};
use tokio_postgres::{Client, NoTls};

async fn connect(conn: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection: {e}");
        }
    });
    Ok(client)
}

async fn schema(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(
            "SET synchronous_commit = on;
             DROP TABLE IF EXISTS bench_reservations, bench_compartments;
             CREATE TABLE bench_compartments (
                 id text PRIMARY KEY, station text NOT NULL, size text NOT NULL,
                 state text NOT NULL, version bigint NOT NULL, reservation text);
             CREATE INDEX bench_free ON bench_compartments (station, size, id)
                 WHERE state = 'available';
             CREATE TABLE bench_reservations (
                 id text PRIMARY KEY, order_id text NOT NULL, station text NOT NULL,
                 compartment text NOT NULL, hold_until timestamptz NOT NULL);",
        )
        .await?;
    for i in 0..STATIONS {
        client
            .execute(
                "INSERT INTO bench_compartments
                 SELECT $1 || ':S' || n, $1, 'small', 'available', 1, NULL
                 FROM generate_series(1, $2::int) AS n",
                &[&station_name(i), &(COMPARTMENTS as i32)],
            )
            .await?;
    }
    client.batch_execute("ANALYZE bench_compartments").await?;
    Ok(())
}

async fn hold(client: &mut Client, n: usize) -> anyhow::Result<()> {
    let station = station_name(n.wrapping_mul(7_919) % STATIONS);
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT id FROM bench_compartments
             WHERE station = $1 AND size = 'small' AND state = 'available'
             ORDER BY station, size, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[&station],
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no compartment free at {station}"))?;
    let compartment: String = row.get(0);
    let id = format!("rsv-{n}");
    tx.execute(
        "UPDATE bench_compartments SET state = 'reserved', version = version + 1, reservation = $2
         WHERE id = $1",
        &[&compartment, &id],
    )
    .await?;
    tx.execute(
        "INSERT INTO bench_reservations VALUES ($1, $2, $3, $4, now() + interval '1 hour')",
        &[&id, &format!("o-{n}"), &station, &compartment],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `total` holds from `clients` connections.
pub async fn reservations(conn: &str, total: usize, clients: usize) -> anyhow::Result<Report> {
    schema(&connect(conn).await?).await?;
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(connect(conn).await?);
    }
    let name =
        format!("same holds in PostgreSQL, SKIP LOCKED, durable commit ({clients} connections)");
    drive(
        name,
        connections,
        total,
        |mut client: Client, n| async move {
            hold(&mut client, n).await?;
            Ok(client)
        },
    )
    .await
}
