//! Cache reservations (cache_serialize), run on SQLite and on PostgreSQL: of the attempts
//! racing for one cache key exactly one holds it, and a dead holder blocks nobody for longer
//! than its expiry. Also what RecoverExecution reuses of an execution's node executions.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::store::{ExecutionKey, NodeExecutionKey, NodeExecutionRow, Reservation};
use alula_admin::Store;

/// A moment in microseconds; reservations below last [`TTL`].
const T0: i64 = 1_704_067_200_000_000;
const TTL: i64 = 30_000_000;

async fn a_free_key_is_taken_and_a_held_one_is_refused(store: Store) {
    let got = store
        .get_or_extend_reservation("p/d/k", "a", T0, T0 + TTL)
        .await
        .unwrap();
    assert_eq!(
        got,
        Reservation {
            owner: "a".into(),
            expires_at: T0 + TTL
        }
    );
    let refused = store
        .get_or_extend_reservation("p/d/k", "b", T0 + 1, T0 + 1 + TTL)
        .await
        .unwrap();
    assert_eq!(refused.owner, "a", "b waits while a holds it");
    assert_eq!(refused.expires_at, T0 + TTL, "b's ask does not extend a's");
    // Another key is independent.
    let other = store
        .get_or_extend_reservation("p/d/other", "b", T0, T0 + TTL)
        .await
        .unwrap();
    assert_eq!(other.owner, "b");
}

async fn the_holder_extends_its_reservation(store: Store) {
    store
        .get_or_extend_reservation("k", "a", T0, T0 + TTL)
        .await
        .unwrap();
    let renewed = store
        .get_or_extend_reservation("k", "a", T0 + TTL / 2, T0 + TTL / 2 + TTL)
        .await
        .unwrap();
    assert_eq!(renewed.expires_at, T0 + TTL / 2 + TTL);
    // Past the first expiry but within the renewed one, b still waits.
    let b = store
        .get_or_extend_reservation("k", "b", T0 + TTL + 1, T0 + 2 * TTL)
        .await
        .unwrap();
    assert_eq!(b.owner, "a");
}

async fn an_expired_reservation_is_taken_over(store: Store) {
    store
        .get_or_extend_reservation("k", "dead", T0, T0 + TTL)
        .await
        .unwrap();
    let b = store
        .get_or_extend_reservation("k", "b", T0 + TTL + 1, T0 + 2 * TTL)
        .await
        .unwrap();
    assert_eq!(b.owner, "b", "a crashed owner never blocks forever");
    // The dead owner coming back cannot release or extend what b now holds.
    assert!(!store.release_reservation("k", "dead").await.unwrap());
    let back = store
        .get_or_extend_reservation("k", "dead", T0 + TTL + 2, T0 + 3 * TTL)
        .await
        .unwrap();
    assert_eq!(back.owner, "b");
}

async fn release_frees_the_key_for_the_next_waiter(store: Store) {
    store
        .get_or_extend_reservation("k", "a", T0, T0 + TTL)
        .await
        .unwrap();
    assert!(
        !store.release_reservation("k", "b").await.unwrap(),
        "not b's"
    );
    assert!(store.release_reservation("k", "a").await.unwrap());
    assert!(!store.release_reservation("k", "a").await.unwrap(), "once");
    let b = store
        .get_or_extend_reservation("k", "b", T0 + 1, T0 + TTL)
        .await
        .unwrap();
    assert_eq!(b.owner, "b");
}

async fn racing_owners_get_one_winner(store: Store) {
    for round in 0..20 {
        let key = format!("race-{round}");
        let asks = (0..8).map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let owner = format!("owner-{i}");
                let got = store
                    .get_or_extend_reservation(&key, &owner, T0, T0 + TTL)
                    .await
                    .unwrap();
                (owner, got.owner)
            })
        });
        let mut winners = Vec::new();
        let mut holders = std::collections::HashSet::new();
        for ask in asks {
            let (owner, holder) = ask.await.unwrap();
            if owner == holder {
                winners.push(owner);
            }
            holders.insert(holder);
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(holders.len(), 1, "everyone sees the one holder");
    }
}

async fn recoverable_node_executions_are_the_succeeded_and_recovered_ones(store: Store) {
    let exec = |name: &str| ExecutionKey {
        project: "p".into(),
        domain: "d".into(),
        name: name.into(),
    };
    for (execution, node, phase) in [
        ("x", "n0", "SUCCEEDED"),
        ("x", "n1", "FAILED"),
        ("x", "n2-0-n0", "RECOVERED"),
        ("x", "n3", "RUNNING"),
        ("x", "n4", "ABORTED"),
        ("other", "n5", "SUCCEEDED"),
    ] {
        let row = NodeExecutionRow {
            key: NodeExecutionKey {
                execution: exec(execution),
                node_id: node.into(),
            },
            phase: phase.into(),
            outputs: node.as_bytes().to_vec(),
            created_at: T0,
            updated_at: T0,
            ..Default::default()
        };
        assert!(store.insert_node_execution(&row).await.unwrap());
    }
    let mut found: Vec<(String, Vec<u8>)> = store
        .recoverable_node_executions(&exec("x"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.key.node_id, r.outputs))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("n0".to_string(), b"n0".to_vec()),
            ("n2-0-n0".to_string(), b"n2-0-n0".to_vec()),
        ]
    );
}

on_both_backends!(
    recoverable_node_executions_are_the_succeeded_and_recovered_ones,
    a_free_key_is_taken_and_a_held_one_is_refused,
    the_holder_extends_its_reservation,
    an_expired_reservation_is_taken_over,
    release_frees_the_key_for_the_next_waiter,
    racing_owners_get_one_winner,
);
