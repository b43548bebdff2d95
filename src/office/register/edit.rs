//! Editing the register in memory with `toml_edit` (comments and layout kept): enroll, holders,
//! revocations, badges, visits and the version; every edit refuses bad input before it changes
//! anything.

use super::*;

impl LoadedRegister {
    /// Adds the card `uid` to holder `id` in memory, creating the holder from `new` when the
    /// register has none with that id, and keeping the file's comments and layout. Refuses a card
    /// another holder holds, and `new` for an existing holder. The edited text is parsed again;
    /// [`LoadedRegister::save`] writes it (check it with [`LoadedRegister::build_payload`] first).
    pub fn enroll(
        &mut self,
        id: &str,
        uid: &Uid,
        new: Option<&NewHolder>,
    ) -> Result<Enrolled, RegisterError> {
        let mut position = None;
        for (i, h) in self.register.holders.iter().enumerate() {
            for (c, text) in h.cards.iter().enumerate() {
                if text.parse::<Uid>().ok().as_ref() != Some(uid) {
                    continue;
                }
                if h.id == id {
                    return Ok(Enrolled::AlreadyEnrolled);
                }
                return Err(self.error(
                    &format!("holder[{i}].cards[{c}]"),
                    format!(
                        "card {} is already held by {:?}; remove it there first to move it",
                        uid.to_hex(),
                        h.id
                    ),
                ));
            }
            if h.id == id {
                position = Some(i);
            }
        }
        if let Some(CardOwner::Badge(b)) = self.card_owner(uid) {
            return Err(self.error(
                &format!("badge[{b}].card"),
                format!(
                    "card {} is visitor badge {} of the pool",
                    uid.to_hex(),
                    self.register.badges[b].id
                ),
            ));
        }
        let mut doc: toml_edit::DocumentMut = self
            .text
            .parse()
            .map_err(|e: toml_edit::TomlError| self.error("", e.to_string()))?;
        let not_tables = || {
            self.error(
                "holder",
                "holders must be written as [[holder]] tables for pintuctl to edit them",
            )
        };
        if let Some(new) = new {
            refuse_blank_approver(self, id, &new.approver)?;
        }
        let change = match (position, new) {
            (Some(i), Some(_)) => {
                return Err(self.error(
                    &format!("holder[{i}].id"),
                    format!("holder {id:?} already exists: name, role, validity, request reference and approver are only for a new holder (edit the register to change them)"),
                ))
            }
            (None, None) => {
                return Err(self.error(
                    "",
                    format!("no holder {id:?} in the register: give the new holder's name, role, validity end, request reference and approver to add one"),
                ))
            }
            (Some(i), None) => {
                let cards = doc
                    .get_mut("holder")
                    .and_then(toml_edit::Item::as_array_of_tables_mut)
                    .and_then(|holders| holders.get_mut(i))
                    .and_then(|h| h.get_mut("cards"))
                    .and_then(toml_edit::Item::as_array_mut)
                    .ok_or_else(not_tables)?;
                cards.push(uid.to_hex());
                Enrolled::CardAdded { cards: cards.len() }
            }
            (None, Some(new)) => {
                let holders = doc
                    .entry("holder")
                    .or_insert_with(|| toml_edit::ArrayOfTables::new().into())
                    .as_array_of_tables_mut()
                    .ok_or_else(not_tables)?;
                holders.push(self.holder_table(id, std::slice::from_ref(uid), new, "enroll"));
                Enrolled::HolderCreated
            }
        };
        let text = doc.to_string();
        self.register = parse_toml(&self.path, &text)?;
        self.text = text;
        Ok(change)
    }

    /// An error about a requested change (no line: the change is not in the file).
    pub(super) fn refuse(&self, message: impl Into<String>) -> RegisterError {
        RegisterError::At(ConfigError {
            file: self.path.clone(),
            line: None,
            key: String::new(),
            message: message.into(),
        })
    }

    pub(super) fn document(&self) -> Result<toml_edit::DocumentMut, RegisterError> {
        self.text
            .parse()
            .map_err(|e: toml_edit::TomlError| self.error("", e.to_string()))
    }

    /// Takes the edited document as the register's text (parsed again).
    pub(super) fn replace_text(
        &mut self,
        doc: &toml_edit::DocumentMut,
    ) -> Result<(), RegisterError> {
        let text = doc.to_string();
        self.register = parse_toml(&self.path, &text)?;
        self.text = text;
        Ok(())
    }

    /// The `[[name]]` tables of `doc`, created when absent.
    pub(super) fn tables_mut<'d>(
        &self,
        doc: &'d mut toml_edit::DocumentMut,
        name: &str,
    ) -> Result<&'d mut toml_edit::ArrayOfTables, RegisterError> {
        doc.entry(name)
            .or_insert_with(|| toml_edit::ArrayOfTables::new().into())
            .as_array_of_tables_mut()
            .ok_or_else(|| {
                self.error(
                    name,
                    format!(
                        "{name} must be written as [[{name}]] tables for pintuctl to edit them"
                    ),
                )
            })
    }

    /// Index of holder `id`.
    pub fn holder_index(&self, id: &str) -> Option<usize> {
        self.register.holders.iter().position(|h| h.id == id)
    }

    pub(super) fn holder_or_refuse(&self, id: &str) -> Result<usize, RegisterError> {
        self.holder_index(id).ok_or_else(|| {
            self.refuse(format!(
                "no holder {id:?} in the register (pintuctl list holders)"
            ))
        })
    }

    /// Who holds `uid` now: a holder (index, card index) or a pool badge (index).
    pub fn card_owner(&self, uid: &Uid) -> Option<CardOwner> {
        for (i, h) in self.register.holders.iter().enumerate() {
            for (c, text) in h.cards.iter().enumerate() {
                if text.parse::<Uid>().ok().as_ref() == Some(uid) {
                    return Some(CardOwner::Holder(i, c));
                }
            }
        }
        self.register
            .badges
            .iter()
            .position(|b| b.card.parse::<Uid>().ok().as_ref() == Some(uid))
            .map(CardOwner::Badge)
    }

    pub(super) fn refuse_held(&self, uid: &Uid) -> Result<(), RegisterError> {
        match self.card_owner(uid) {
            None => Ok(()),
            Some(CardOwner::Holder(i, _)) => Err(self.refuse(format!(
                "card {} is already held by holder {:?}; revoke it there first to move it",
                uid.to_hex(),
                self.register.holders[i].id
            ))),
            Some(CardOwner::Badge(b)) => Err(self.refuse(format!(
                "card {} is visitor badge {} of the pool",
                uid.to_hex(),
                self.register.badges[b].id
            ))),
        }
    }

    pub(super) fn check_date(&self, what: &str, text: &str) -> Result<Timestamp, RegisterError> {
        let tz = self.time_zone()?;
        DateSpec(text.to_string())
            .resolve(&tz)
            .map_err(|m| self.refuse(format!("{what}: {m}")))
    }

    /// The open visit that has badge `badge` out, if any.
    pub fn badge_in_use(&self, badge: &str) -> Option<&VisitRecord> {
        self.register
            .visits
            .iter()
            .find(|v| v.is_open() && v.badge == badge)
    }

    /// Adds holder `id` with `cards` (possibly none: enroll them later) and `doors` (`None`:
    /// every door of the list). Refuses an existing id, a card already held, bad dates.
    pub fn add_holder(
        &mut self,
        id: &str,
        new: &NewHolder,
        cards: &[Uid],
        doors: Option<&[String]>,
    ) -> Result<(), RegisterError> {
        if id.trim().is_empty() {
            return Err(self.refuse("holder id is empty"));
        }
        if self.holder_index(id).is_some() {
            return Err(self.refuse(format!(
                "holder {id:?} already exists (pintuctl holder edit to change it)"
            )));
        }
        for (n, uid) in cards.iter().enumerate() {
            self.refuse_held(uid)?;
            if cards[..n].contains(uid) {
                return Err(self.refuse(format!("card {} is given twice", uid.to_hex())));
            }
        }
        if let Some(from) = &new.valid_from {
            self.check_date(&format!("holder {id}: valid_from"), from)?;
        }
        self.check_date(&format!("holder {id}: valid_until"), &new.valid_until)?;
        if new.name.trim().is_empty() {
            return Err(self.refuse(format!("holder {id}: name is empty")));
        }
        refuse_blank_approver(self, id, &new.approver)?;
        let mut doc = self.document()?;
        let mut table = self.holder_table(id, cards, new, "holder add");
        if let Some(doors) = doors {
            table["doors"] = toml_edit::value(toml_edit::Array::from_iter(doors.iter()));
        }
        self.tables_mut(&mut doc, "holder")?.push(table);
        self.replace_text(&doc)
    }

    /// Applies `edit` to holder `id`; returns what changed (`field: old → new`), empty when
    /// nothing did. A change of role, validity or doors is a new grant: it needs the request
    /// reference and approver, which replace the holder's.
    pub fn edit_holder(
        &mut self,
        id: &str,
        edit: &HolderEdit,
    ) -> Result<Vec<String>, RegisterError> {
        let i = self.holder_or_refuse(id)?;
        let grant = edit.role.is_some()
            || edit.valid_from.is_some()
            || edit.valid_until.is_some()
            || edit.doors.is_some();
        if grant && (edit.request_ref.is_none() || edit.approver.is_none()) {
            return Err(self.refuse(format!(
                "holder {id}: a change of role, validity or doors is a new grant: give its request reference and approver"
            )));
        }
        if let Some(approver) = &edit.approver {
            refuse_blank_approver(self, id, approver)?;
        }
        if let Some(from) = &edit.valid_from {
            self.check_date(&format!("holder {id}: valid_from"), from)?;
        }
        if let Some(until) = &edit.valid_until {
            self.check_date(&format!("holder {id}: valid_until"), until)?;
        }
        let old = self.register.holders[i].clone();
        let mut doc = self.document()?;
        let table = self
            .tables_mut(&mut doc, "holder")?
            .get_mut(i)
            .ok_or_else(|| self.refuse(format!("holder {id:?} is not a [[holder]] table")))?;
        let mut changes = Vec::new();
        let mut set = |key: &str, old: String, new: &str, value: toml_edit::Value| {
            if old != new {
                changes.push(format!("{key}: {old:?} → {new:?}"));
                set_keeping_decor(table, key, value);
            }
        };
        if let Some(v) = &edit.name {
            set("name", old.name.clone(), v, v.into());
        }
        if let Some(v) = &edit.unit {
            set("unit", old.unit.clone(), v, v.into());
        }
        if let Some(v) = edit.role {
            set(
                "role",
                old.role.as_str().into(),
                v.as_str(),
                v.as_str().into(),
            );
        }
        if let Some(v) = &edit.valid_from {
            set("valid_from", old.valid_from.0.clone(), v, date_value(v));
        }
        if let Some(v) = &edit.valid_until {
            set("valid_until", old.valid_until.0.clone(), v, date_value(v));
        }
        if grant {
            if let Some(v) = &edit.request_ref {
                set("request_ref", old.request_ref.clone(), v, v.into());
            }
            if let Some(v) = &edit.approver {
                set("approver", old.approver.clone(), v, v.into());
            }
        }
        match &edit.doors {
            Some(Some(doors)) => {
                let old_doors = old.doors.as_ref().map_or("all".into(), |d| d.join(","));
                let new_doors = doors.join(",");
                if old.doors.as_ref() != Some(doors) {
                    changes.push(format!("doors: {old_doors} → {new_doors}"));
                    set_keeping_decor(
                        table,
                        "doors",
                        toml_edit::Array::from_iter(doors.iter()).into(),
                    );
                }
            }
            Some(None) => {
                if let Some(d) = &old.doors {
                    changes.push(format!("doors: {} → all", d.join(",")));
                    table.remove("doors");
                }
            }
            None => {}
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        self.replace_text(&doc)?;
        Ok(changes)
    }

    /// Removes holder `id`, recording each of their cards in `[[revoked]]`. Refuses while the
    /// holder hosts or escorts an open visit. Returns the revoked cards.
    pub fn remove_holder(
        &mut self,
        id: &str,
        info: &RevokeInfo,
    ) -> Result<Vec<RevokedCard>, RegisterError> {
        let i = self.holder_or_refuse(id)?;
        if let Some(v) = self
            .register
            .visits
            .iter()
            .find(|v| v.is_open() && (v.host == id || v.escort.as_deref() == Some(id)))
        {
            return Err(self.refuse(format!(
                "holder {id} hosts or escorts open visit {} (ends {}): end it first (pintuctl visit end {})",
                v.id, v.until, v.id
            )));
        }
        check_info(self, info)?;
        let cards = self.register.holders[i].cards.clone();
        let mut doc = self.document()?;
        self.tables_mut(&mut doc, "holder")?.remove(i);
        let at = self.local_time(info.at);
        let revoked = self.tables_mut(&mut doc, "revoked")?;
        let mut out = Vec::new();
        for card in cards {
            let card = card.parse::<Uid>().map(|u| u.to_hex()).unwrap_or(card);
            revoked.push(revocation_table(Some(id), None, &card, &at, info));
            out.push(RevokedCard {
                owner: id.to_string(),
                badge: false,
                card,
            });
        }
        self.replace_text(&doc)?;
        Ok(out)
    }

    /// Takes cards out of service: removes them from their holder (who stays, possibly with no
    /// card) or from the badge pool, and records each in `[[revoked]]`. A badge out on an open
    /// visit is refused (end the visit first).
    pub fn revoke(
        &mut self,
        target: &RevokeTarget,
        info: &RevokeInfo,
    ) -> Result<Vec<RevokedCard>, RegisterError> {
        check_info(self, info)?;
        // (holder index, card indices) or badge index.
        let (holder, badge) = match target {
            RevokeTarget::Holder(id) => {
                let i = self.holder_or_refuse(id)?;
                let cards: Vec<usize> = (0..self.register.holders[i].cards.len()).collect();
                if cards.is_empty() {
                    return Err(self.refuse(format!(
                        "holder {id} has no card to revoke (pintuctl show holder {id})"
                    )));
                }
                (Some((i, cards)), None)
            }
            RevokeTarget::Card(uid) => match self.card_owner(uid) {
                Some(CardOwner::Holder(i, c)) => (Some((i, vec![c])), None),
                Some(CardOwner::Badge(b)) => (None, Some(b)),
                None => {
                    return Err(self.refuse(format!(
                        "card {} is not in the register (no holder or badge has it)",
                        uid.to_hex()
                    )))
                }
            },
        };
        let at = self.local_time(info.at);
        let mut doc = self.document()?;
        let mut out = Vec::new();
        if let Some((i, cards)) = holder {
            let h = &self.register.holders[i];
            let array = self
                .tables_mut(&mut doc, "holder")?
                .get_mut(i)
                .and_then(|t| t.get_mut("cards"))
                .and_then(toml_edit::Item::as_array_mut)
                .ok_or_else(|| {
                    self.error(
                        &format!("holder[{i}].cards"),
                        "cards must be an array for pintuctl to edit it",
                    )
                })?;
            for &c in cards.iter().rev() {
                array.remove(c);
            }
            let revoked = self.tables_mut(&mut doc, "revoked")?;
            for &c in &cards {
                let text = &h.cards[c];
                let card = text
                    .parse::<Uid>()
                    .map(|u| u.to_hex())
                    .unwrap_or(text.clone());
                revoked.push(revocation_table(Some(&h.id), None, &card, &at, info));
                out.push(RevokedCard {
                    owner: h.id.clone(),
                    badge: false,
                    card,
                });
            }
        }
        if let Some(b) = badge {
            let badge = &self.register.badges[b];
            if let Some(v) = self.badge_in_use(&badge.id) {
                return Err(self.refuse(format!(
                    "badge {} is in use by visit {} (ends {}): end the visit first (pintuctl visit end {})",
                    badge.id, v.id, v.until, v.id
                )));
            }
            let card = badge
                .card
                .parse::<Uid>()
                .map(|u| u.to_hex())
                .unwrap_or(badge.card.clone());
            self.tables_mut(&mut doc, "badge")?.remove(b);
            self.tables_mut(&mut doc, "revoked")?.push(revocation_table(
                None,
                Some(&badge.id),
                &card,
                &at,
                info,
            ));
            out.push(RevokedCard {
                owner: badge.id.clone(),
                badge: true,
                card,
            });
        }
        self.replace_text(&doc)?;
        Ok(out)
    }

    /// Adds badge `id` with card `uid` to the visitor-badge pool.
    pub fn add_badge(&mut self, id: &str, uid: &Uid) -> Result<(), RegisterError> {
        if id.trim().is_empty() {
            return Err(self.refuse("badge id is empty"));
        }
        if self.register.badges.iter().any(|b| b.id == id) {
            return Err(self.refuse(format!("badge {id} is already in the pool")));
        }
        self.refuse_held(uid)?;
        let mut doc = self.document()?;
        let mut t = toml_edit::Table::new();
        t["id"] = toml_edit::value(id);
        t["card"] = toml_edit::value(uid.to_hex());
        self.tables_mut(&mut doc, "badge")?.push(t);
        self.replace_text(&doc)
    }

    /// Removes badge `id` from the pool, recorded in `[[revoked]]`.
    pub fn remove_badge(
        &mut self,
        id: &str,
        info: &RevokeInfo,
    ) -> Result<RevokedCard, RegisterError> {
        let badge = self
            .register
            .badges
            .iter()
            .find(|b| b.id == id)
            .ok_or_else(|| {
                self.refuse(format!("no badge {id} in the pool (pintuctl list badges)"))
            })?;
        let uid: Uid = badge
            .card
            .parse()
            .map_err(|e| self.refuse(format!("badge {id}: {e}")))?;
        let mut out = self.revoke(&RevokeTarget::Card(uid), info)?;
        out.pop()
            .ok_or_else(|| self.refuse(format!("badge {id} was not removed")))
    }

    /// Records an approved visit with a badge from the pool; returns its id. Refuses an unknown
    /// badge, host or escort, a badge in use, a window that is empty or already over, and a
    /// visitor written as a national ID number.
    pub fn issue_visit(&mut self, v: &NewVisit, now: Timestamp) -> Result<String, RegisterError> {
        let tz = self.time_zone()?;
        let id = match &v.id {
            Some(id) => id.trim().to_string(),
            None => self.next_visit_id(now.to_zoned(tz).year()),
        };
        if id.is_empty() {
            return Err(self.refuse("visit id is empty"));
        }
        let refuse = |what: String| self.refuse(format!("visit {id}: {what}"));
        if self.register.visits.iter().any(|o| o.id == id) {
            return Err(refuse("a visit with this id already exists".into()));
        }
        if v.visitor.trim().is_empty() {
            return Err(refuse("the visitor's name is empty".into()));
        }
        if looks_like_national_id(&v.visitor) {
            return Err(refuse(format!(
                "visitor {:?} looks like a national ID number (NIK): record the name and company only",
                v.visitor
            )));
        }
        for (what, value) in [
            ("request reference", &v.request_ref),
            ("approver", &v.approver),
        ] {
            if value.trim().is_empty() {
                return Err(refuse(format!("the {what} is empty")));
            }
        }
        if !self.register.badges.iter().any(|b| b.id == v.badge) {
            return Err(refuse(format!(
                "badge {} is not in the badge pool (pintuctl list badges)",
                v.badge
            )));
        }
        if let Some(other) = self.badge_in_use(&v.badge) {
            return Err(refuse(format!(
                "badge {} is in use by visit {} (ends {})",
                v.badge, other.id, other.until
            )));
        }
        let staff = |role: &str, holder: &str| -> Result<(), RegisterError> {
            match self.holder_index(holder).map(|i| &self.register.holders[i]) {
                None => Err(refuse(format!(
                    "{role} {holder:?} is not a holder in the register"
                ))),
                Some(h) if h.role == Role::Visitor => Err(refuse(format!(
                    "{role} {holder:?} is a visitor; a {role} is staff or escort"
                ))),
                Some(_) => Ok(()),
            }
        };
        staff("host", &v.host)?;
        if let Some(escort) = &v.escort {
            staff("escort", escort)?;
        }
        let from = self.check_date(&format!("visit {id}: from"), &v.from)?;
        let until = self.check_date(&format!("visit {id}: until"), &v.until)?;
        if until <= from {
            return Err(refuse(format!(
                "the window ends ({}) before it starts ({})",
                v.until, v.from
            )));
        }
        if until <= now {
            return Err(refuse(format!(
                "the window ends {}, which is in the past",
                self.local_time(until)
            )));
        }
        let mut doc = self.document()?;
        let mut t = toml_edit::Table::new();
        t["id"] = toml_edit::value(&id);
        t["visitor"] = toml_edit::value(&v.visitor);
        t["host"] = toml_edit::value(&v.host);
        if let Some(escort) = &v.escort {
            t["escort"] = toml_edit::value(escort);
        }
        t["badge"] = toml_edit::value(&v.badge);
        t["from"] = toml_edit::value(&v.from);
        t["until"] = toml_edit::value(&v.until);
        t["request_ref"] = toml_edit::value(&v.request_ref);
        t["approver"] = toml_edit::value(&v.approver);
        self.tables_mut(&mut doc, "visit")?.push(t);
        self.replace_text(&doc)?;
        Ok(id)
    }

    /// The next `V-YEAR-NNNN` visit id.
    pub(super) fn next_visit_id(&self, year: i16) -> String {
        let prefix = format!("V-{year}-");
        let last = self
            .register
            .visits
            .iter()
            .filter_map(|v| v.id.strip_prefix(&prefix)?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        format!("{prefix}{:04}", last + 1)
    }

    /// Ends open visit `id` at `at`: its badge is back in the pool.
    pub fn end_visit(&mut self, id: &str, at: Timestamp) -> Result<VisitRecord, RegisterError> {
        let i = self
            .register
            .visits
            .iter()
            .position(|v| v.id == id)
            .ok_or_else(|| {
                self.refuse(format!(
                    "no visit {id} in the register (pintuctl list visits)"
                ))
            })?;
        if let Some(ended) = &self.register.visits[i].ended_at {
            return Err(self.refuse(format!("visit {id} already ended at {ended}")));
        }
        let at = self.local_time(at);
        let mut doc = self.document()?;
        let t = self
            .tables_mut(&mut doc, "visit")?
            .get_mut(i)
            .ok_or_else(|| self.refuse(format!("visit {id:?} is not a [[visit]] table")))?;
        t["ended_at"] = toml_edit::value(at);
        self.replace_text(&doc)?;
        Ok(self.register.visits[i].clone())
    }

    /// Records `version` as the last signed version in memory (keeping comments and layout);
    /// [`LoadedRegister::save`] writes it.
    pub fn bump_version(&mut self, version: u64) -> Result<(), RegisterError> {
        let mut doc = self.document()?;
        if !doc.contains_table("list") {
            doc["list"] = toml_edit::table();
        }
        let v =
            i64::try_from(version).map_err(|_| self.error("list.version", "version too large"))?;
        // Replace the number but keep its comments and spacing.
        match doc["list"]["version"].as_value_mut() {
            Some(old) => {
                let decor = old.decor().clone();
                *old = v.into();
                *old.decor_mut() = decor;
            }
            None => doc["list"]["version"] = toml_edit::value(v),
        }
        self.text = doc.to_string();
        self.register.list.version = version;
        Ok(())
    }

    /// The `[[holder]]` table for a new holder, in the order the format documents.
    pub(super) fn holder_table(
        &self,
        id: &str,
        cards: &[Uid],
        new: &NewHolder,
        by: &str,
    ) -> toml_edit::Table {
        use toml_edit::value;
        let today = TimeZone::get(&self.register.time_zone)
            .map(|tz| Timestamp::now().to_zoned(tz).date())
            .unwrap_or_else(|_| Timestamp::now().to_zoned(TimeZone::UTC).date());
        let date = |s: &str| toml_edit::Item::Value(date_value(s));
        let mut t = toml_edit::Table::new();
        t.decor_mut()
            .set_prefix(format!("\n# Added by `pintuctl {by}` on {today}.\n"));
        t["id"] = value(id);
        t["name"] = value(&new.name);
        if let Some(unit) = &new.unit {
            t["unit"] = value(unit);
        }
        t["role"] = value(new.role.as_str());
        t["cards"] = value(toml_edit::Array::from_iter(cards.iter().map(Uid::to_hex)));
        t["valid_from"] = match &new.valid_from {
            Some(from) => date(from),
            None => date(&today.to_string()),
        };
        t["valid_until"] = date(&new.valid_until);
        t["request_ref"] = value(&new.request_ref);
        t["approver"] = value(&new.approver);
        t
    }

    /// Writes the register's text back to its file, atomically, keeping the file's mode.
    pub fn save(&self) -> Result<(), RegisterError> {
        // The last guard: whatever command got here, an imported register is not written.
        self.refuse_if_imported("(any command that edits the register)", "pintu-office")?;
        let mode = std::fs::metadata(&self.path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o640);
        crate::util::files::write_atomic(&self.path, self.text.as_bytes(), mode).map_err(|source| {
            RegisterError::Io {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// Records `version` as the last signed version and writes the register, keeping the file's
    /// comments and layout.
    pub fn set_version(&mut self, version: u64) -> Result<(), RegisterError> {
        self.bump_version(version)?;
        self.save()
    }
}
