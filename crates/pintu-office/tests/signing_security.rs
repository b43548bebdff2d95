//! Security of approvals: a passphrase opens only its own approver's key, wrong tries are
//! audited and throttled, a tampered sealed key does not open, offline signatures by unknown keys
//! or over other bytes are refused, and one approver never counts twice. SQLite and PostgreSQL.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use pintu::office::offline::{self, PayloadFile, SignatureFile};
use pintu_office::db_test;
use pintu_office::signing::{PayloadKind, SigningError};
use pintu_testkit::Site;

use crate::signing_support::*;

db_test!(
    async fn an_approver_cannot_sign_with_another_approvers_passphrase(t) {
        let s = signer(&t, 2, 5);
        let (budi, sari, _, _) = two_approvers(&s, &t).await;
        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        // Budi with Sari's passphrase, and Budi's own passphrase as Sari.
        for (account, pass) in [(&budi, SARI_PASS), (&sari, BUDI_PASS)] {
            let got = s.sign_with_passphrase(&p.id, account, pass).await;
            assert!(
                matches!(got, Err(SigningError::WrongPassphrase { remaining: 4, .. })),
                "{got:?}"
            );
        }
        assert!(s.payload(&p.id).await.unwrap().signatures.is_empty());
        let fails = pintu_office::audit::list(&t.db, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.action == "signing.fail")
            .collect::<Vec<_>>();
        assert_eq!(fails.len(), 2);
        assert!(fails[0]
            .after_json
            .as_deref()
            .unwrap()
            .contains("wrong_passphrase"));
        assert_eq!(fails[0].target, format!("payload:{}", p.id));
    }
);

db_test!(
    async fn wrong_passphrases_are_throttled_per_account(t) {
        let s = signer(&t, 2, 3);
        let (budi, sari, _, _) = two_approvers(&s, &t).await;
        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        for remaining in [2, 1, 0] {
            match s.sign_with_passphrase(&p.id, &budi, "not my passphrase").await {
                Err(SigningError::WrongPassphrase { remaining: r, .. }) => assert_eq!(r, remaining),
                other => panic!("{other:?}"),
            }
        }
        // Now even the right passphrase waits: the key is not tried at all.
        match s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await {
            Err(SigningError::Throttled { retry_after_s, .. }) => {
                assert!((1..=900).contains(&retry_after_s), "{retry_after_s}")
            }
            other => panic!("{other:?}"),
        }
        // Another approver is not held up.
        s.sign_with_passphrase(&p.id, &sari, SARI_PASS).await.unwrap();
        // Right passphrases are not counted: after two signatures Sari still has all her tries.
        let q = s
            .create_payload(PayloadKind::List, Some(pintu_testkit::DOOR), &list_bytes(&site, 2), &budi)
            .await
            .unwrap();
        s.sign_with_passphrase(&q.id, &sari, SARI_PASS).await.unwrap();
        let r = s
            .create_payload(PayloadKind::Command, Some(pintu_testkit::DOOR), &unlock_bytes(), &budi)
            .await
            .unwrap();
        assert!(matches!(
            s.sign_with_passphrase(&r.id, &sari, BUDI_PASS).await,
            Err(SigningError::WrongPassphrase { remaining: 2, .. })
        ));
        let fails = audit_actions(&t).await.iter().filter(|a| *a == "signing.fail").count();
        assert_eq!(fails, 5, "Budi's three wrong passphrases, his throttled try, Sari's one");
    }
);

db_test!(
    async fn a_tampered_sealed_key_does_not_open(t) {
        let s = signer(&t, 2, 5);
        let (budi, sari, kb, ks) = two_approvers(&s, &t).await;
        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        let sealed_of = |id: String| {
            let db = t.db.clone();
            async move {
                sqlx::query_scalar::<_, String>("SELECT sealed_secret FROM approver_keys WHERE id = $1")
                    .bind(id)
                    .fetch_one(db.pool())
                    .await
                    .unwrap()
            }
        };
        let set_sealed = |id: String, sealed: String| {
            let db = t.db.clone();
            async move {
                sqlx::query("UPDATE approver_keys SET sealed_secret = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(id)
                    .execute(db.pool())
                    .await
                    .unwrap();
            }
        };
        // One bit of Budi's ciphertext flipped.
        let original = sealed_of(kb.key_id.clone()).await;
        let mut record: serde_json::Value = serde_json::from_str(&original).unwrap();
        let mut raw = B64.decode(record["ciphertext"].as_str().unwrap()).unwrap();
        raw[30] ^= 0x01;
        record["ciphertext"] = B64.encode(&raw).into();
        set_sealed(kb.key_id.clone(), record.to_string()).await;
        assert!(matches!(
            s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await,
            Err(SigningError::SealedKeyDamaged(_))
        ));
        // Sari's sealed key copied over Budi's: bound to Sari's account and key id, it does not
        // open as Budi's, even with Sari's passphrase.
        set_sealed(kb.key_id.clone(), sealed_of(ks.key_id.clone()).await).await;
        for pass in [BUDI_PASS, SARI_PASS] {
            assert!(matches!(
                s.sign_with_passphrase(&p.id, &budi, pass).await,
                Err(SigningError::SealedKeyDamaged(_))
            ));
        }
        // Lowered KDF parameters: the derived key differs, the key does not open.
        let mut weaker: serde_json::Value = serde_json::from_str(&original).unwrap();
        weaker["kdf"]["t"] = 2.into();
        set_sealed(kb.key_id.clone(), weaker.to_string()).await;
        assert!(s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.is_err());
        // Restored, it signs.
        set_sealed(kb.key_id.clone(), original).await;
        s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.unwrap();
        let _ = sari;
    }
);

/// An approver holding their key offline: `kadis`, key made like `pintuctl keygen` does.
async fn offline_approver(
    s: &pintu_office::signing::Signer,
    t: &pintu_office::testing::TestDb,
) -> (String, SigningKey, pintu_office::signing::ApproverKey) {
    let kadis = account(t, "kadis").await;
    let key = SigningKey::from_bytes(&[77; 32]);
    let registered = s
        .register_public_key(
            &kadis,
            &B64.encode(key.verifying_key().to_bytes()),
            &actor(&kadis),
        )
        .await
        .unwrap();
    assert!(registered.held_offline);
    (kadis, key, registered)
}

db_test!(
    async fn offline_signatures_by_unknown_keys_or_over_other_bytes_are_refused(t) {
        let s = signer(&t, 2, 5);
        let (budi, _sari, _, _) = two_approvers(&s, &t).await;
        let (kadis, key, registered) = offline_approver(&s, &t).await;
        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        let (file, bytes) =
            PayloadFile::parse(&s.export_offline(&p.id, &actor(&budi)).await.unwrap()).unwrap();
        let uploader = actor(&budi);

        // A key nobody registered.
        let stranger = SigningKey::from_bytes(&[5; 32]);
        let sig = offline::sign_file(&file, &bytes, "stranger", &stranger);
        assert!(matches!(
            s.import_signature_file(&sig.to_bytes(), &uploader).await,
            Err(SigningError::UnknownKey(_))
        ));
        // The registered key's id with a stranger's signature.
        let forged = stranger.sign(&offline::signing_message(PayloadKind::List, &bytes));
        assert!(matches!(
            s.add_offline_signature(&p.id, &registered.key_id, None, &B64.encode(forged.to_bytes()), &uploader)
                .await,
            Err(SigningError::BadSignature(_))
        ));
        // The right key over other bytes (another list), claimed for this payload.
        let other = list_bytes(&site, 2);
        let over_other = key.sign(&offline::signing_message(PayloadKind::List, &other));
        assert!(matches!(
            s.add_offline_signature(&p.id, &registered.key_id, None, &B64.encode(over_other.to_bytes()), &uploader)
                .await,
            Err(SigningError::BadSignature(_))
        ));
        // A signature file for other bytes.
        let other_file = PayloadFile::new(&p.id, PayloadKind::List, "x", &other);
        let sig = offline::sign_file(&other_file, &other, "kadis-usb", &key);
        assert!(matches!(
            s.import_signature_file(&sig.to_bytes(), &uploader).await,
            Err(SigningError::OtherBytes { .. })
        ));
        // The right bytes under the command context.
        let as_command = key.sign(&offline::signing_message(PayloadKind::Command, &bytes));
        assert!(matches!(
            s.add_offline_signature(&p.id, &registered.key_id, None, &B64.encode(as_command.to_bytes()), &uploader)
                .await,
            Err(SigningError::BadSignature(_))
        ));
        assert!(s.payload(&p.id).await.unwrap().signatures.is_empty());
        let fails = audit_actions(&t).await.iter().filter(|a| *a == "signing.fail").count();
        assert_eq!(fails, 5);
        // The right one is taken, under the registered key id.
        let good = offline::sign_file(&file, &bytes, "kadis-usb", &key);
        let outcome = s.import_signature_file(&good.to_bytes(), &uploader).await.unwrap();
        assert_eq!(outcome.key_id, registered.key_id);
        assert_eq!(outcome.signatures, 1);
        // A key held offline does not sign with a passphrase.
        assert!(matches!(
            s.sign_with_passphrase(&p.id, &kadis, "whatever passphrase").await,
            Err(SigningError::AlreadySigned { .. }) | Err(SigningError::KeyHeldOffline(_))
        ));
        let _: SignatureFile = good;
    }
);

db_test!(
    async fn the_same_approver_twice_does_not_reach_two(t) {
        let s = signer(&t, 2, 5);
        let (budi, _sari, first, _) = two_approvers(&s, &t).await;
        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.unwrap();
        // Again with the same key.
        assert!(matches!(
            s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await,
            Err(SigningError::AlreadySigned { .. })
        ));
        // With a new key of the same account: still one approver.
        s.create_key(&budi, "a second long passphrase", &actor(&budi))
            .await
            .unwrap();
        assert!(matches!(
            s.sign_with_passphrase(&p.id, &budi, "a second long passphrase").await,
            Err(SigningError::AlreadySigned { .. })
        ));
        // An offline signature by Budi's registered offline key: still Budi.
        let offline_key = SigningKey::from_bytes(&[9; 32]);
        let kb = s
            .register_public_key(&budi, &B64.encode(offline_key.verifying_key().to_bytes()), &actor(&budi))
            .await
            .unwrap();
        let (file, bytes) =
            PayloadFile::parse(&s.export_offline(&p.id, &actor(&budi)).await.unwrap()).unwrap();
        let sig = offline::sign_file(&file, &bytes, &kb.key_id, &offline_key);
        assert!(matches!(
            s.import_signature_file(&sig.to_bytes(), &actor(&budi)).await,
            Err(SigningError::AlreadySigned { .. })
        ));
        // The retired first key is refused outright.
        assert!(matches!(
            s.add_offline_signature(&p.id, &first.key_id, None, "AAAA", &actor(&budi)).await,
            Err(SigningError::KeyRetired(_))
        ));
        let info = s.payload(&p.id).await.unwrap();
        assert_eq!(info.signatures.len(), 1);
        assert!(matches!(
            s.envelope(&p.id).await,
            Err(SigningError::NotComplete { have: 1, need: 2, .. })
        ));
    }
);

db_test!(
    async fn a_former_approver_no_longer_signs(t) {
        let s = signer(&t, 2, 5);
        let (budi, _sari, _, _) = two_approvers(&s, &t).await;
        let (kadis, key, _) = offline_approver(&s, &t).await;
        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        let (file, bytes) =
            PayloadFile::parse(&s.export_offline(&p.id, &actor(&budi)).await.unwrap()).unwrap();
        // Both move to another post: the approver role is taken away.
        sqlx::query("DELETE FROM account_roles WHERE role = 'approver' AND account_id IN ($1, $2)")
            .bind(&budi)
            .bind(&kadis)
            .execute(t.db.pool())
            .await
            .unwrap();
        assert!(matches!(
            s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await,
            Err(SigningError::NotApprover(_))
        ));
        let sig = offline::sign_file(&file, &bytes, "kadis-usb", &key);
        assert!(matches!(
            s.import_signature_file(&sig.to_bytes(), &actor(&budi)).await,
            Err(SigningError::NotApprover(_))
        ));
        assert!(s.payload(&p.id).await.unwrap().signatures.is_empty());
    }
);
