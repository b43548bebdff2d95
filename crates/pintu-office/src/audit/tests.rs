use super::*;
use crate::db_test;

fn alice() -> AuditActor {
    AuditActor {
        id: "acc-alice".into(),
        name: "alice".into(),
    }
}

async fn three_rows(t: &crate::testing::TestDb) {
    for n in 0..3 {
        record_alone(
            &t.db,
            &t.key,
            &alice(),
            Entry::new("holder.update", format!("holder:{n}"))
                .before(serde_json::json!({"name": "Budi"}))
                .after(serde_json::json!({"name": "Budi Santoso"})),
        )
        .await
        .unwrap();
    }
}

db_test!(async fn an_untouched_chain_verifies(t) {
    let empty = verify(&t.db, &t.key).await.unwrap();
    assert_eq!(empty, Verdict { rows: 0, problem: None });
    three_rows(&t).await;
    let verdict = verify(&t.db, &t.key).await.unwrap();
    assert_eq!(verdict, Verdict { rows: 3, problem: None });
    let rows = list(&t.db, 0, 10).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(rows[0].prev_mac, GENESIS);
    assert_eq!(rows[1].prev_mac, rows[0].mac);
    assert_eq!(rows[2].after_json.as_deref(), Some(r#"{"name":"Budi Santoso"}"#));
});

db_test!(async fn an_edit_made_with_plain_sql_is_found(t) {
    three_rows(&t).await;
    sqlx::query("UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 2")
        .execute(t.db.pool())
        .await
        .unwrap();
    let verdict = verify(&t.db, &t.key).await.unwrap();
    assert_eq!(verdict.problem, Some(Problem::Edited { seq: 2 }));
});

db_test!(async fn a_deleted_row_is_found(t) {
    three_rows(&t).await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(t.db.pool()).await.unwrap();
    let verdict = verify(&t.db, &t.key).await.unwrap();
    assert_eq!(verdict.problem, Some(Problem::Broken { seq: 3 }));
});

db_test!(async fn deleting_the_newest_rows_is_found(t) {
    three_rows(&t).await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 3").execute(t.db.pool()).await.unwrap();
    let verdict = verify(&t.db, &t.key).await.unwrap();
    assert_eq!(verdict.problem, Some(Problem::Head { table_seq: 2, head_seq: 3 }));
});

db_test!(async fn a_rewritten_chain_without_the_key_is_found(t) {
    three_rows(&t).await;
    // Someone with SQL but not the service key rewrites row 2 and "fixes" its mac with a key
    // of their own: the mac does not match under the real key.
    let forged_key = ServiceKey::from_bytes(&[1; 32]);
    let mut rows = list(&t.db, 0, 10).await.unwrap();
    rows[1].actor_name = "mallory".into();
    let forged = mac_of(&forged_key, &rows[1]);
    sqlx::query("UPDATE audit_log SET actor_name = 'mallory', mac = $1 WHERE seq = 2")
        .bind(&forged)
        .execute(t.db.pool())
        .await
        .unwrap();
    let verdict = verify(&t.db, &t.key).await.unwrap();
    assert_eq!(verdict.problem, Some(Problem::Edited { seq: 2 }));
});

db_test!(async fn concurrent_writers_keep_one_chain(t) {
    let mut tasks = Vec::new();
    for n in 0..16 {
        let db = t.db.clone();
        let key = t.key.clone();
        tasks.push(tokio::spawn(async move {
            record_alone(&db, &key, &alice(), Entry::new("login.ok", format!("account:{n}")))
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(verify(&t.db, &t.key).await.unwrap(), Verdict { rows: 16, problem: None });
});
