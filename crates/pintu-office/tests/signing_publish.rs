//! Publishing signed payloads to a real pintud through a real Mosquitto (the door trusts two
//! service-held keys with threshold 2), the file export into the door's inbox, and the offline
//! round trip through the real `pintuctl sign`. SQLite and PostgreSQL.
//!
//! Needs the `pintud` and `pintuctl` binaries built (`cargo build --bins`; the workspace test
//! run builds them).

use pintu::office::offline::PayloadFile;
use pintu_office::db_test;
use pintu_office::signing::{PayloadKind, SigningError};
use pintu_testkit::broker::{Broker, BrokerOptions};
use pintu_testkit::{Pintud, Site, DOOR, SITE};

use crate::signing_support::*;

db_test!(
    async fn a_list_signed_by_two_of_two_reaches_a_real_door_and_one_of_two_is_refused(t) {
        let s = signer(&t, 2, 5);
        let (budi, sari, kb, ks) = two_approvers(&s, &t).await;
        let broker = Broker::start(BrokerOptions::default());
        let site = Site::new();
        let door = Pintud::start(&door_config(&site, &[&kb, &ks], Some(&broker)), &site.socket(), &[]);
        let settings = office_broker(&broker);

        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.unwrap();
        // 1 of 2: the service does not publish it.
        assert!(matches!(
            s.publish(&p.id, Some(&settings), &actor(&budi)).await,
            Err(SigningError::NotComplete { have: 1, need: 2, .. })
        ));
        s.sign_with_passphrase(&p.id, &sari, SARI_PASS).await.unwrap();
        let published = s.publish(&p.id, Some(&settings), &actor(&budi)).await.unwrap();
        assert_eq!(published.topic.as_deref(), Some(format!("pintu/{SITE}/list").as_str()));
        door.wait_for("list v1 over MQTT", |st| st.list.as_ref().is_some_and(|l| l.version == 1));
        assert_eq!(door.tap(STAFF_UID).decision, "grant");

        // An office misconfigured to k = 1 publishes a list Budi alone signed: the door refuses it.
        let lax = signer(&t, 1, 5);
        let q = lax
            .create_payload(PayloadKind::List, Some(DOOR), &list_bytes(&site, 2), &budi)
            .await
            .unwrap();
        lax.sign_with_passphrase(&q.id, &budi, BUDI_PASS).await.unwrap();
        let published = lax.publish(&q.id, Some(&settings), &actor(&budi)).await.unwrap();
        assert_eq!(
            published.topic.as_deref(),
            Some(format!("pintu/{SITE}/{DOOR}/list").as_str())
        );
        wait_event(&door, "list.rejected", Some("threshold_not_met"));
        assert_eq!(door.status().list.map(|l| l.version), Some(1));

        // A door command signed by both goes to the door's command topic and is carried out.
        let c = s
            .create_payload(PayloadKind::Command, Some(DOOR), &unlock_bytes(), &budi)
            .await
            .unwrap();
        s.sign_with_passphrase(&c.id, &budi, BUDI_PASS).await.unwrap();
        s.sign_with_passphrase(&c.id, &sari, SARI_PASS).await.unwrap();
        let sent = s.publish(&c.id, Some(&settings), &actor(&budi)).await.unwrap();
        assert_eq!(
            sent.topic.as_deref(),
            Some(format!("pintu/{SITE}/{DOOR}/commands").as_str())
        );
        wait_event(&door, "command.accepted", None);
        drop(door);
        let published_actions = audit_actions(&t)
            .await
            .iter()
            .filter(|a| *a == "payload.publish")
            .count();
        assert_eq!(published_actions, 3);
    }
);

db_test!(
    async fn a_list_exported_as_a_file_is_taken_from_the_doors_inbox(t) {
        let s = signer(&t, 2, 5);
        let (budi, sari, kb, ks) = two_approvers(&s, &t).await;
        let site = Site::new();
        let door = Pintud::start(&door_config(&site, &[&kb, &ks], None), &site.socket(), &[]);
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 4), &budi)
            .await
            .unwrap();
        s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.unwrap();
        s.sign_with_passphrase(&p.id, &sari, SARI_PASS).await.unwrap();
        let published = s.publish(&p.id, None, &actor(&budi)).await.unwrap();
        std::fs::create_dir_all(site.inbox()).unwrap();
        let path = published.write_to(&site.inbox()).unwrap();
        assert!(path.ends_with(format!("{SITE}-v4.signed")));
        door.wait_for("list v4 from the inbox", |st| st.list.as_ref().is_some_and(|l| l.version == 4));
        assert_eq!(door.tap(STAFF_UID).decision, "grant");
    }
);

db_test!(
    async fn a_payload_signed_offline_with_pintuctl_sign_completes_it(t) {
        let s = signer(&t, 2, 5);
        let budi = account(&t, "budi").await;
        let kadis = account(&t, "kadis").await;
        let kb = s.create_key(&budi, BUDI_PASS, &actor(&budi)).await.unwrap();
        // Kadis keeps a key file made with `pintuctl keygen` and registers its public half.
        let dir = tempfile::tempdir().unwrap();
        let (key_file, _pub_file, public) =
            pintu::office::keys::keygen(dir.path(), "kadis-usb").unwrap();
        let kk = s
            .register_public_key(&kadis, &public.public_key, &actor(&kadis))
            .await
            .unwrap();

        let site = Site::new();
        let p = s
            .create_payload(PayloadKind::List, None, &list_bytes(&site, 1), &budi)
            .await
            .unwrap();
        s.sign_with_passphrase(&p.id, &budi, BUDI_PASS).await.unwrap();
        let exported = s.export_offline(&p.id, &actor(&kadis)).await.unwrap();
        let (file, _) = PayloadFile::parse(&exported).unwrap();
        assert_eq!(file.payload_id, p.id);
        let payload_path = dir.path().join("payload.json");
        std::fs::write(&payload_path, &exported).unwrap();

        let out = pintu_testkit::pintuctl(&[
            "sign",
            "--key",
            key_file.to_str().unwrap(),
            payload_path.to_str().unwrap(),
        ]);
        let stdout = pintu_testkit::text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", pintu_testkit::text(&out.stderr));
        assert!(stdout.contains("list version 1 for site"), "{stdout}");
        let signature = std::fs::read(dir.path().join("payload.json.sig")).unwrap();
        let outcome = s
            .import_signature_file(&signature, &actor(&kadis))
            .await
            .unwrap();
        assert!(outcome.complete);
        assert_eq!(outcome.key_id, kk.key_id);

        let envelope = s.envelope(&p.id).await.unwrap();
        pintu::core::list::verify(&envelope, &door_policy(&[&kb, &kk], 2), None, None)
            .expect("the door accepts a service and an offline signature");
        let how: Vec<String> = s
            .payload(&p.id)
            .await
            .unwrap()
            .signatures
            .into_iter()
            .map(|sig| sig.how)
            .collect();
        assert_eq!(how, ["service", "offline"]);

        // pintuctl refuses a payload file whose bytes were changed after export.
        let mut edited: serde_json::Value = serde_json::from_slice(&exported).unwrap();
        edited["payload"] = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            list_bytes(&site, 9),
        )
        .into();
        std::fs::write(&payload_path, edited.to_string()).unwrap();
        let out = pintu_testkit::pintuctl(&[
            "sign",
            "--key",
            key_file.to_str().unwrap(),
            payload_path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert!(pintu_testkit::text(&out.stderr).contains("SHA-256"));
    }
);
