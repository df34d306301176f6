//! Propeller's records in admin's database (leases, state, outbox, task cache), run on SQLite
//! and on PostgreSQL: several propeller instances must never run one execution at once.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use alula_admin::store::{ExecutionKey, ExecutionRow, OutboxEvent, RunRecord};
use alula_admin::Store;

/// A moment in microseconds; leases below run for [`LEASE`].
const T0: i64 = 1_704_067_200_000_000;
const LEASE: i64 = 30_000_000;

fn key(name: &str) -> ExecutionKey {
    ExecutionKey {
        project: "p".into(),
        domain: "d".into(),
        name: name.into(),
    }
}

fn execution(name: &str, phase: &str, created_at: i64) -> ExecutionRow {
    ExecutionRow {
        key: key(name),
        launch_entity: 3,
        launch_plan_name: "lp".into(),
        launch_plan_version: "v1".into(),
        phase: phase.into(),
        spec: b"spec".to_vec(),
        closure: b"closure".to_vec(),
        created_at,
        updated_at: created_at,
        ..Default::default()
    }
}

async fn insert(store: &Store, name: &str, phase: &str, created_at: i64) {
    assert!(store
        .insert_execution(&execution(name, phase, created_at))
        .await
        .unwrap());
}

fn names(records: &[RunRecord]) -> Vec<String> {
    let mut names: Vec<String> = records.iter().map(|r| r.key.name.clone()).collect();
    names.sort();
    names
}

fn event(seq: i64, kind: i64, body: &str) -> OutboxEvent {
    OutboxEvent {
        seq,
        kind,
        event: body.as_bytes().to_vec(),
    }
}

async fn a_queued_execution_is_claimed_once(store: Store) {
    insert(&store, "e1", "QUEUED", T0).await;
    let claimed = store.claim_runs("a", T0, T0 + LEASE, 10).await.unwrap();
    assert_eq!(
        claimed,
        [RunRecord {
            key: key("e1"),
            state: vec![],
            generation: 0,
            next_event: 0,
        }]
    );
    assert_eq!(store.count_open_runs().await.unwrap(), 1);
    // Another instance finds nothing while the lease runs, even a moment before it ends.
    assert!(store
        .claim_runs("b", T0 + 1, T0 + 1 + LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_runs("b", T0 + LEASE - 1, T0 + 2 * LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    // Adoption is idempotent: still one run record.
    assert_eq!(store.count_open_runs().await.unwrap(), 1);
}

async fn every_active_phase_is_adopted_and_terminal_ones_are_not(store: Store) {
    let active = ["QUEUED", "RUNNING", "SUCCEEDING", "FAILING", "ABORTING"];
    let terminal = ["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT", "UNDEFINED"];
    for (i, phase) in active.iter().chain(terminal.iter()).enumerate() {
        insert(&store, &phase.to_lowercase(), phase, T0 + i as i64).await;
    }
    let claimed = store.claim_runs("a", T0, T0 + LEASE, 100).await.unwrap();
    let mut expected: Vec<String> = active.iter().map(|p| p.to_lowercase()).collect();
    expected.sort();
    assert_eq!(names(&claimed), expected);
    assert_eq!(store.count_open_runs().await.unwrap(), 5);
}

async fn the_limit_bounds_a_claim(store: Store) {
    for i in 0..5 {
        insert(&store, &format!("e{i}"), "RUNNING", T0 + i).await;
    }
    let first = store.claim_runs("a", T0, T0 + LEASE, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let second = store.claim_runs("b", T0, T0 + LEASE, 10).await.unwrap();
    assert_eq!(second.len(), 3);
    let mut all = names(&first);
    all.extend(names(&second));
    all.sort();
    assert_eq!(all, ["e0", "e1", "e2", "e3", "e4"]);
}

async fn an_expired_lease_is_taken_over_and_the_old_owner_is_fenced(store: Store) {
    insert(&store, "e1", "RUNNING", T0).await;
    let k = key("e1");
    assert_eq!(
        store
            .claim_runs("a", T0, T0 + LEASE, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .save_run(
            &k,
            "a",
            b"state-a".to_vec(),
            0,
            &[(0, b"ev0".to_vec())],
            T0 + LEASE,
            T0 + 1
        )
        .await
        .unwrap());

    // "a" stalls past its lease; "b" takes over and resumes from what "a" saved.
    let later = T0 + LEASE + 1;
    let taken = store
        .claim_runs("b", later, later + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(
        taken,
        [RunRecord {
            key: k.clone(),
            state: b"state-a".to_vec(),
            generation: 1,
            next_event: 1,
        }]
    );

    // Every write of "a" is refused and leaves no trace.
    assert!(!store
        .save_run(
            &k,
            "a",
            b"stale".to_vec(),
            1,
            &[(1, b"stale-ev".to_vec())],
            later + 2 * LEASE,
            later + 1
        )
        .await
        .unwrap());
    assert!(!store.renew_run(&k, "a", later + 2 * LEASE).await.unwrap());
    assert!(!store.finish_run(&k, "a", later + 1).await.unwrap());
    assert_eq!(store.release_runs("a").await.unwrap(), 0);
    assert_eq!(
        store.outbox(&k, 10).await.unwrap(),
        [event(0, 0, "ev0")],
        "the fenced save appended no event"
    );
    // Nor did the refused renewal extend the lease, nor the refused save change the state: once
    // "b" lets its lease lapse, "c" finds exactly what "a" saved before losing it.
    let much_later = later + LEASE + 1;
    let resumed = store
        .claim_runs("c", much_later, much_later + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].state, b"state-a");
    assert_eq!(resumed[0].generation, 1);
    assert_eq!(resumed[0].next_event, 1);

    // "b" lost it to "c" in turn.
    assert!(!store
        .renew_run(&k, "b", much_later + 2 * LEASE)
        .await
        .unwrap());
    assert!(store
        .renew_run(&k, "c", much_later + 2 * LEASE)
        .await
        .unwrap());
    // The renewal holds: past the first lease but within the renewed one, nobody takes it.
    assert!(store
        .claim_runs("d", much_later + LEASE + 1, much_later + 3 * LEASE, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn an_owner_reclaims_its_own_runs_at_once(store: Store) {
    insert(&store, "e1", "RUNNING", T0).await;
    insert(&store, "e2", "QUEUED", T0 + 1).await;
    let k = key("e1");
    assert_eq!(
        store
            .claim_runs("a", T0, T0 + LEASE, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store
        .save_run(
            &k,
            "a",
            b"s1".to_vec(),
            0,
            &[(1, b"x".to_vec()), (2, b"y".to_vec())],
            T0 + LEASE,
            T0 + 1
        )
        .await
        .unwrap());
    // "a" restarts: its leases have not expired, yet it resumes them straight away.
    let again = store
        .claim_runs("a", T0 + 2, T0 + 2 + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(names(&again), ["e1", "e2"]);
    let e1 = again.iter().find(|r| r.key == k).unwrap();
    assert_eq!(e1.state, b"s1");
    assert_eq!(e1.generation, 1);
    assert_eq!(e1.next_event, 2);
    // Still nobody else's.
    assert!(store
        .claim_runs("b", T0 + 3, T0 + 3 + LEASE, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn save_writes_state_and_numbered_events_together(store: Store) {
    insert(&store, "e1", "RUNNING", T0).await;
    insert(&store, "e2", "RUNNING", T0 + 1).await;
    let k = key("e1");
    store.claim_runs("a", T0, T0 + LEASE, 10).await.unwrap();

    assert!(store
        .save_run(
            &k,
            "a",
            b"g1".to_vec(),
            0,
            &[
                (0, b"wf-running".to_vec()),
                (1, b"node-queued".to_vec()),
                (2, b"task-running".to_vec()),
            ],
            T0 + LEASE,
            T0 + 1
        )
        .await
        .unwrap());
    // A save without events keeps the numbering.
    assert!(store
        .save_run(&k, "a", b"g2".to_vec(), 3, &[], T0 + LEASE, T0 + 2)
        .await
        .unwrap());
    assert!(store
        .save_run(
            &k,
            "a",
            b"g3".to_vec(),
            3,
            &[
                (2, b"task-succeeded".to_vec()),
                (1, b"node-succeeded".to_vec())
            ],
            T0 + LEASE,
            T0 + 3
        )
        .await
        .unwrap());
    let all = vec![
        event(0, 0, "wf-running"),
        event(1, 1, "node-queued"),
        event(2, 2, "task-running"),
        event(3, 2, "task-succeeded"),
        event(4, 1, "node-succeeded"),
    ];
    assert_eq!(store.outbox(&k, 100).await.unwrap(), all);
    assert_eq!(store.outbox(&k, 2).await.unwrap(), all[..2]);
    // Another execution's outbox is its own.
    assert!(store.outbox(&key("e2"), 100).await.unwrap().is_empty());

    // Acknowledging removes every event up to the sequence number, and only those.
    store.ack_outbox(&k, 2).await.unwrap();
    assert_eq!(store.outbox(&k, 100).await.unwrap(), all[3..]);
    store.ack_outbox(&k, 2).await.unwrap(); // a repeated ack is harmless
    assert_eq!(store.outbox(&k, 100).await.unwrap(), all[3..]);
    store.ack_outbox(&k, 4).await.unwrap();
    assert!(store.outbox(&k, 100).await.unwrap().is_empty());

    // The state, generation and event counter are what a restart resumes from.
    let resumed = store
        .claim_runs("a", T0 + 4, T0 + 4 + LEASE, 10)
        .await
        .unwrap();
    let e1 = resumed.iter().find(|r| r.key == k).unwrap();
    assert_eq!(e1.state, b"g3");
    assert_eq!(e1.generation, 3);
    assert_eq!(e1.next_event, 5);
}

async fn a_failed_save_writes_nothing(store: Store) {
    insert(&store, "e1", "RUNNING", T0).await;
    let k = key("e1");
    store.claim_runs("a", T0, T0 + LEASE, 10).await.unwrap();
    assert!(store
        .save_run(
            &k,
            "a",
            b"g1".to_vec(),
            0,
            &[(0, b"first".to_vec())],
            T0 + LEASE,
            T0 + 1
        )
        .await
        .unwrap());
    // A save numbering its events from a sequence number already used (seq 0 holds "first")
    // breaks the outbox's key: the whole save is rolled back, the state included.
    assert!(store
        .save_run(
            &k,
            "a",
            b"g2".to_vec(),
            0,
            &[(1, b"second".to_vec()), (2, b"third".to_vec())],
            T0 + LEASE,
            T0 + 2
        )
        .await
        .is_err());
    assert_eq!(store.outbox(&k, 10).await.unwrap(), [event(0, 0, "first")]);
    let resumed = store
        .claim_runs("a", T0 + 3, T0 + 3 + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(
        resumed,
        [RunRecord {
            key: k.clone(),
            state: b"g1".to_vec(),
            generation: 1,
            next_event: 1,
        }]
    );
    // The store is usable after the rollback.
    assert!(store
        .save_run(
            &k,
            "a",
            b"g2".to_vec(),
            1,
            &[(0, b"second".to_vec())],
            T0 + LEASE,
            T0 + 4
        )
        .await
        .unwrap());
    assert_eq!(store.outbox(&k, 10).await.unwrap().len(), 2);
}

async fn a_finished_run_is_closed_for_good(store: Store) {
    // Still RUNNING in the executions table: a finished run must not be adopted again anyway.
    insert(&store, "e1", "RUNNING", T0).await;
    insert(&store, "e2", "RUNNING", T0 + 1).await;
    let k = key("e1");
    store.claim_runs("a", T0, T0 + LEASE, 10).await.unwrap();
    assert!(store
        .save_run(&k, "a", b"big".to_vec(), 0, &[], T0 + LEASE, T0 + 1)
        .await
        .unwrap());
    // Only the owner finishes.
    assert!(!store.finish_run(&k, "b", T0 + 2).await.unwrap());
    assert!(store.finish_run(&k, "a", T0 + 2).await.unwrap());
    assert_eq!(store.count_open_runs().await.unwrap(), 1);

    // Neither the owner, nor another instance, nor anyone after any lease would have expired.
    for (owner, now) in [("a", T0 + 3), ("b", T0 + 3), ("b", T0 + 10 * LEASE)] {
        let claimed = store.claim_runs(owner, now, now + LEASE, 10).await.unwrap();
        assert!(
            claimed.iter().all(|r| r.key != k),
            "{owner} claimed a finished run"
        );
    }
    // Nor may the former owner write to it again.
    assert!(!store
        .save_run(&k, "a", b"late".to_vec(), 0, &[], T0 + LEASE, T0 + 4)
        .await
        .unwrap());
    assert!(!store.renew_run(&k, "a", T0 + 2 * LEASE).await.unwrap());
    assert!(!store.finish_run(&k, "a", T0 + 4).await.unwrap());
    // Releasing frees only the open run (e2, which "b" took over above), not the finished one.
    assert_eq!(store.release_runs("b").await.unwrap(), 1);
    assert_eq!(store.count_open_runs().await.unwrap(), 1);
    let claimed = store
        .claim_runs("c", T0 + 11 * LEASE, T0 + 12 * LEASE, 10)
        .await
        .unwrap();
    assert_eq!(names(&claimed), ["e2"]);
}

async fn released_runs_are_claimable_at_once(store: Store) {
    insert(&store, "e1", "RUNNING", T0).await;
    insert(&store, "e2", "QUEUED", T0 + 1).await;
    insert(&store, "e3", "QUEUED", T0 + 2).await;
    assert_eq!(
        store
            .claim_runs("a", T0, T0 + LEASE, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .claim_runs("b", T0, T0 + LEASE, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .save_run(&key("e1"), "a", b"s".to_vec(), 0, &[], T0 + LEASE, T0 + 1)
        .await
        .unwrap());
    // A clean shutdown of "a" frees its two leases, not those of "b".
    assert_eq!(store.release_runs("a").await.unwrap(), 2);
    assert_eq!(store.release_runs("a").await.unwrap(), 0);
    assert!(!store
        .renew_run(&key("e1"), "a", T0 + 2 * LEASE)
        .await
        .unwrap());
    // Well within the old lease, "c" resumes them, state kept.
    let taken = store
        .claim_runs("c", T0 + 2, T0 + 2 + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(names(&taken), ["e1", "e2"]);
    let e1 = taken.iter().find(|r| r.key.name == "e1").unwrap();
    assert_eq!(e1.state, b"s");
    assert_eq!(e1.generation, 1);
    assert_eq!(store.count_open_runs().await.unwrap(), 3);
}

async fn concurrent_claimers_never_share_an_execution(store: Store) {
    for i in 0..20 {
        insert(&store, &format!("e{i:02}"), "QUEUED", T0 + i).await;
    }
    // Fresh executions: both instances adopt and lease at the same moment.
    let (a, b) = tokio::join!(
        store.claim_runs("a", T0, T0 + LEASE, 100),
        store.claim_runs("b", T0, T0 + LEASE, 100),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut all = names(&a);
    all.extend(names(&b));
    all.sort();
    let expected: Vec<String> = (0..20).map(|i| format!("e{i:02}")).collect();
    assert_eq!(all, expected, "each execution claimed exactly once");
    assert_eq!(store.count_open_runs().await.unwrap(), 20);

    // Expired leases: two other instances race to take them over.
    let later = T0 + LEASE + 1;
    let (c, d) = tokio::join!(
        store.claim_runs("c", later, later + LEASE, 100),
        store.claim_runs("d", later, later + LEASE, 100),
    );
    let (c, d) = (c.unwrap(), d.unwrap());
    let mut all = names(&c);
    all.extend(names(&d));
    all.sort();
    assert_eq!(all, expected, "each expired lease taken over exactly once");
    // And the store agrees with what each believes it holds.
    for r in &c {
        assert!(store.renew_run(&r.key, "c", later + LEASE).await.unwrap());
        assert!(!store.renew_run(&r.key, "d", later + LEASE).await.unwrap());
    }
    for r in &d {
        assert!(store.renew_run(&r.key, "d", later + LEASE).await.unwrap());
        assert!(!store.renew_run(&r.key, "c", later + LEASE).await.unwrap());
    }
}

async fn the_first_cached_outputs_win(store: Store) {
    assert_eq!(store.get_cached_outputs("k1").await.unwrap(), None);
    store
        .put_cached_outputs("k1", b"first".to_vec(), "e1/n0/0", T0)
        .await
        .unwrap();
    store
        .put_cached_outputs("k1", b"second".to_vec(), "e2/n0/0", T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        store.get_cached_outputs("k1").await.unwrap(),
        Some(b"first".to_vec())
    );
    // Racing writers: exactly one value stays, and it is one of theirs.
    let (x, y) = tokio::join!(
        store.put_cached_outputs("k2", b"x".to_vec(), "e3/n0/0", T0 + 2),
        store.put_cached_outputs("k2", b"y".to_vec(), "e4/n0/0", T0 + 2),
    );
    x.unwrap();
    y.unwrap();
    let won = store.get_cached_outputs("k2").await.unwrap().unwrap();
    assert!(won == b"x" || won == b"y");
    assert_eq!(
        store.get_cached_outputs("k1").await.unwrap(),
        Some(b"first".to_vec())
    );
    // Empty outputs (a task without outputs) are a hit, not a miss.
    store
        .put_cached_outputs("k3", Vec::new(), "e5/n0/0", T0 + 3)
        .await
        .unwrap();
    assert_eq!(
        store.get_cached_outputs("k3").await.unwrap(),
        Some(Vec::new())
    );
}

on_both_backends!(
    a_queued_execution_is_claimed_once,
    every_active_phase_is_adopted_and_terminal_ones_are_not,
    the_limit_bounds_a_claim,
    an_expired_lease_is_taken_over_and_the_old_owner_is_fenced,
    an_owner_reclaims_its_own_runs_at_once,
    save_writes_state_and_numbered_events_together,
    a_failed_save_writes_nothing,
    a_finished_run_is_closed_for_good,
    released_runs_are_claimable_at_once,
    concurrent_claimers_never_share_an_execution,
    the_first_cached_outputs_win,
);
