//! Approvals are signatures: k distinct approvers over the same bytes make an envelope the door's
//! own verification accepts; keys rotate; a newer list supersedes pending ones; commands take
//! the same path. Every test runs on SQLite and on PostgreSQL.

use jiff::Timestamp;
use pintu::core::command::{self, CommandPolicy};
use pintu::core::list::{self, Rejection};
use pintu_office::db_test;
use pintu_office::signing::{PayloadKind, SigningError};
use pintu_testkit::{Site, DOOR};

use crate::signing_support::*;

db_test!(
    async fn two_of_two_approvers_make_a_list_the_door_verifies(t) {
        let s = signer(&t, 2, 5);
        let (budi, sari, kb, ks) = two_approvers(&s, &t).await;
        assert_eq!(kb.key_id, "budi-".to_string() + &year());
        assert!(list::is_identifier(&kb.key_id));
        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, Some(DOOR), &list_bytes(&site, 3), &budi)
            .await
            .unwrap();
        assert_eq!(p.status, "pending");
        assert_eq!(p.list_version, Some(3));
        assert!(p.summary.starts_with("list version 3"), "{}", p.summary);

        let one = s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.unwrap();
        assert_eq!((one.signatures, one.needed, one.complete), (1, 2, false));
        assert!(matches!(
            s.envelope(&p.id).await,
            Err(SigningError::NotComplete { have: 1, need: 2, .. })
        ));
        let two = s.sign_with_passphrase(&p.id, &sari, SARI_PASS).await.unwrap();
        assert!(two.complete);

        let envelope = s.envelope(&p.id).await.unwrap();
        let verified = list::verify(&envelope, &door_policy(&[&kb, &ks], 2), None, Some(Timestamp::now()))
            .expect("the door accepts 2 of 2");
        assert_eq!(verified.meta.version, 3);
        assert_eq!(verified.meta.signed_by.len(), 2);
        // A door wanting three approvers refuses it.
        assert!(matches!(
            list::verify(&envelope, &door_policy(&[&kb, &ks], 3), None, None),
            Err(Rejection::ThresholdNotMet { valid: 2, needed: 3 })
        ));
        let actions = audit_actions(&t).await;
        for want in ["signing.key.create", "payload.create", "payload.sign"] {
            assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
        }
        assert_eq!(actions.iter().filter(|a| *a == "payload.sign").count(), 2);
        let verdict = pintu_office::audit::verify(&t.db, &t.key).await.unwrap();
        assert_eq!(verdict.problem, None);
    }
);

fn year() -> String {
    Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year()
        .to_string()
}

db_test!(
    async fn door_commands_take_the_same_path(t) {
        let s = signer(&t, 2, 5);
        let (budi, sari, kb, ks) = two_approvers(&s, &t).await;
        let bytes = unlock_bytes();
        // A command goes to one door: it must name it.
        assert!(matches!(
            s.create_payload(PayloadKind::Command, None, &bytes, &budi).await,
            Err(SigningError::InvalidPayload { kind: "command", .. })
        ));
        let p = s
            .create_payload(PayloadKind::Command, Some(DOOR), &bytes, &budi)
            .await
            .unwrap();
        assert!(p.summary.starts_with("command unlock_once"), "{}", p.summary);
        s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.unwrap();
        s.sign_with_passphrase(&p.id, &sari, SARI_PASS).await.unwrap();
        let envelope = s.envelope(&p.id).await.unwrap();
        let policy = CommandPolicy {
            trust: door_policy(&[&kb, &ks], 2),
            max_lifetime: command::DEFAULT_MAX_LIFETIME,
            list_trust: None,
        };
        let verified = command::verify(&envelope, &policy, Timestamp::now()).expect("door accepts");
        assert_eq!(verified.signed_by.len(), 2);
        // A list's signature does not pass as a command's: the contexts differ.
        let as_list = String::from_utf8(envelope)
            .unwrap()
            .replace(command::COMMAND_ENVELOPE_FORMAT, list::ENVELOPE_FORMAT);
        assert!(list::verify(as_list.as_bytes(), &door_policy(&[&kb, &ks], 2), None, None).is_err());
        // Doors take no commands from files.
        assert!(matches!(
            s.publish(&p.id, None, &actor(&budi)).await,
            Err(SigningError::NoBroker)
        ));
    }
);

db_test!(
    async fn a_payload_doors_would_refuse_is_not_put_up_for_signature(t) {
        let s = signer(&t, 2, 5);
        let budi = account(&t, "budi").await;
        let site = Site::new();
        let mut expired = site.payload(1, vec![]);
        expired.expires_at = expired.issued_at + jiff::SignedDuration::from_secs(1);
        for (kind, door, bytes) in [
            (PayloadKind::List, None, b"{}".to_vec()),
            (PayloadKind::List, None, serde_json::to_vec(&expired).unwrap()),
            (PayloadKind::List, Some("another-door"), list_bytes(&site, 1)),
            (PayloadKind::Command, Some(DOOR), list_bytes(&site, 1)),
            (PayloadKind::List, None, unlock_bytes()),
        ] {
            let got = s.create_payload(kind, door, &bytes, &budi).await;
            assert!(
                matches!(got, Err(SigningError::InvalidPayload { .. })),
                "{kind:?} {door:?}: {got:?}"
            );
        }
        assert!(s.pending().await.unwrap().is_empty());
    }
);

db_test!(
    async fn a_newer_list_supersedes_pending_ones_and_versions_only_go_up(t) {
        let s = signer(&t, 1, 5);
        let (budi, _sari, _kb, _ks) = two_approvers(&s, &t).await;
        let site = Site::new();
        let v5 = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 5), &budi)
            .await
            .unwrap();
        let door5 = s
            .create_payload(PayloadKind::List, Some(DOOR), &list_bytes(&site, 5), &budi)
            .await
            .unwrap();
        let v6 = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 6), &budi)
            .await
            .unwrap();
        assert_eq!(s.payload(&v5.id).await.unwrap().status, "superseded");
        // Another target's pending list stays.
        assert_eq!(s.payload(&door5.id).await.unwrap().status, "pending");
        assert!(matches!(
            s.sign_with_passphrase(&v5.id, &budi, BUDI_PASS).await,
            Err(SigningError::NotPending { .. })
        ));
        s.sign_with_passphrase(&v6.id, &budi, BUDI_PASS).await.unwrap();
        let published = s.publish(&v6.id, None, &actor(&budi)).await.unwrap();
        assert_eq!(published.topic, None);
        assert_eq!(published.file_name, format!("{}-v6.signed", pintu_testkit::SITE));
        assert_eq!(s.payload(&v6.id).await.unwrap().status, "published");
        // A published version is never signed again for other bytes.
        for version in [5, 6] {
            assert!(matches!(
                s.create_payload(PayloadKind::List, None, &list_bytes(&site, version), &budi).await,
                Err(SigningError::StaleVersion { published: 6, .. })
            ));
        }
        // The pending door list at v5 is now below what doors may hold: not published.
        s.sign_with_passphrase(&door5.id, &budi, BUDI_PASS).await.unwrap();
        assert!(matches!(
            s.publish(&door5.id, None, &actor(&budi)).await,
            Err(SigningError::StaleVersion { version: 5, published: 6 })
        ));
        // Publishing the same list again is allowed (a broker that lost it).
        s.publish(&v6.id, None, &actor(&budi)).await.unwrap();
        assert!(audit_actions(&t).await.iter().any(|a| a == "payload.publish"));
    }
);

db_test!(
    async fn a_new_key_retires_the_old_one_and_exports_as_a_pub_file(t) {
        let s = signer(&t, 2, 5);
        let budi = account(&t, "budi").await;
        let first = s.create_key(&budi, BUDI_PASS, &actor(&budi)).await.unwrap();
        let second = s
            .create_key(&budi, "another long passphrase", &actor(&budi))
            .await
            .unwrap();
        assert_eq!(second.key_id, format!("{}-2", first.key_id));
        assert!(s.key(&first.key_id).await.unwrap().unwrap().retired_at_ms.is_some());
        assert_eq!(s.active_key(&budi).await.unwrap(), Some(second.clone()));
        assert_eq!(s.all_keys().await.unwrap().len(), 2);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("budi.pub");
        std::fs::write(&path, s.public_key_file(&second.key_id).await.unwrap()).unwrap();
        let (id, key) = pintu::office::keys::load_public_key(&path).unwrap();
        assert_eq!(id, second.key_id);
        assert_eq!(
            key,
            pintu::core::list::decode_public_key(&second.public_key).unwrap()
        );
        // The old passphrase no longer signs: the old key is retired.
        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        assert!(matches!(
            s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await,
            Err(SigningError::WrongPassphrase { .. })
        ));
        let ok = s
            .sign_with_passphrase(&p.id, &budi, "another long passphrase")
            .await
            .unwrap();
        assert_eq!(ok.key_id, second.key_id);
    }
);

db_test!(
    async fn weak_passphrases_are_refused(t) {
        let s = signer(&t, 2, 5);
        let budi = account(&t, "budi").await;
        for weak in ["short", "budi-budi-budi", "aaaaaaaaaaaaaaaa"] {
            assert!(
                matches!(
                    s.create_key(&budi, weak, &actor(&budi)).await,
                    Err(SigningError::Passphrase(_))
                ),
                "{weak}"
            );
        }
        assert_eq!(s.active_key(&budi).await.unwrap(), None);
    }
);

db_test!(
    async fn raised_kdf_parameters_reseal_the_key_at_its_next_unlock(t) {
        let s = signer(&t, 1, 5);
        let budi = account(&t, "budi").await;
        let key = s.create_key(&budi, BUDI_PASS, &actor(&budi)).await.unwrap();
        let mut policy = s.policy().clone();
        policy.kdf.m_kib = 128;
        let stronger = pintu_office::signing::Signer::new(t.db.clone(), t.key.clone(), policy);
        let site = Site::new();
        let p = stronger
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        stronger.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.unwrap();
        let sealed: String = sqlx::query_scalar("SELECT sealed_secret FROM approver_keys WHERE id = $1")
            .bind(&key.key_id)
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(
            pintu_office::signing::vault::params_of(&sealed).unwrap().m_kib,
            128
        );
        assert!(audit_actions(&t).await.iter().any(|a| a == "signing.key.reseal"));
    }
);
