//! Turning the register into a list: the payload and visits of a signed list, checked as the door
//! will check them.

use super::*;

impl LoadedRegister {
    /// Builds the payload for `version`, issued at `now`, and the visits it carries: one entry
    /// per holder card, one `visitor` entry per badge of an open visit whose window has not
    /// ended (holder id = badge id, validity = the visit window), and that visit. Checks the
    /// whole register and everything the door will check; serialize with
    /// [`crate::core::list::payload_bytes`].
    pub fn build_list(
        &self,
        card_key: &CardKey,
        version: u64,
        now: Timestamp,
    ) -> Result<(Payload, Vec<Visit>), RegisterError> {
        let reg = &self.register;
        let tz = self.time_zone()?;
        let valid_for = jiff::SignedDuration::try_from(reg.list_valid_for.0)
            .map_err(|_| self.error("list_valid_for", "too long"))?;
        let mut entries = Vec::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut uids: HashMap<Vec<u8>, String> = HashMap::new();
        for (i, h) in reg.holders.iter().enumerate() {
            let key = |field: &str| format!("holder[{i}].{field}");
            if h.id.trim().is_empty() {
                return Err(self.error(&key("id"), "holder id is empty"));
            }
            if let Some(prev) = ids.insert(h.id.as_str(), i) {
                return Err(self.error(
                    &key("id"),
                    format!("holder id {:?} is also used by holder[{prev}]", h.id),
                ));
            }
            let valid_from = h
                .valid_from
                .resolve(&tz)
                .map_err(|m| self.error(&key("valid_from"), m))?;
            let valid_until = h
                .valid_until
                .resolve(&tz)
                .map_err(|m| self.error(&key("valid_until"), m))?;
            if valid_until <= valid_from {
                return Err(self.error(&key("valid_until"), "must be after valid_from"));
            }
            // docs/register.md: the approver is required; a blank one is no approval, and it
            // would be signed into the list as if it were (issue 16).
            if h.approver.trim().is_empty() {
                return Err(self.error(
                    &key("approver"),
                    format!(
                        "holder {}: the approver is empty: say who approved the request",
                        h.id
                    ),
                ));
            }
            for (w, window) in h.schedule.iter().enumerate() {
                window
                    .validate()
                    .map_err(|m| self.error(&key(&format!("schedule[{w}]")), m))?;
            }
            // A holder without cards (all revoked) stays for the record and has no entry.
            for (c, text) in h.cards.iter().enumerate() {
                let uid: Uid = text
                    .parse()
                    .map_err(|e| self.error(&key(&format!("cards[{c}]")), format!("{e}")))?;
                if let Some(other) = uids.insert(uid.as_bytes().to_vec(), format!("{:?}", h.id)) {
                    return Err(self.error(
                        &key(&format!("cards[{c}]")),
                        format!("card {text} is also held by {other}"),
                    ));
                }
                entries.push(Entry {
                    card: card_key.hash(&uid),
                    holder: h.id.clone(),
                    name: h.name.clone(),
                    role: h.role,
                    valid_from,
                    valid_until,
                    doors: h.doors.clone(),
                    schedule: h.schedule.clone(),
                    request_ref: h.request_ref.clone(),
                    approver: h.approver.clone(),
                });
            }
        }

        let mut badges: HashMap<&str, (usize, Uid)> = HashMap::new();
        for (b, badge) in reg.badges.iter().enumerate() {
            let key = |field: &str| format!("badge[{b}].{field}");
            if badge.id.trim().is_empty() {
                return Err(self.error(&key("id"), "badge id is empty"));
            }
            let uid: Uid = badge
                .card
                .parse()
                .map_err(|e| self.error(&key("card"), format!("badge {}: {e}", badge.id)))?;
            if let Some((prev, _)) = badges.insert(badge.id.as_str(), (b, uid.clone())) {
                return Err(self.error(
                    &key("id"),
                    format!("badge id {:?} is also used by badge[{prev}]", badge.id),
                ));
            }
            if let Some(other) =
                uids.insert(uid.as_bytes().to_vec(), format!("badge {:?}", badge.id))
            {
                return Err(self.error(
                    &key("card"),
                    format!(
                        "badge {}: card {} is also held by {other}",
                        badge.id, badge.card
                    ),
                ));
            }
        }

        let holder = |id: &str| reg.holders.iter().find(|h| h.id == id);
        let mut visits = Vec::new();
        let mut visit_ids: HashMap<&str, usize> = HashMap::new();
        let mut in_use: HashMap<&str, usize> = HashMap::new();
        for (i, v) in reg.visits.iter().enumerate() {
            let key = |field: &str| format!("visit[{i}].{field}");
            let fail = |field: &str, what: String| {
                self.error(&key(field), format!("visit {}: {what}", v.id))
            };
            if v.id.trim().is_empty() {
                return Err(self.error(&key("id"), "visit id is empty"));
            }
            if let Some(prev) = visit_ids.insert(v.id.as_str(), i) {
                return Err(fail("id", format!("id is also used by visit[{prev}]")));
            }
            for (field, value) in [
                ("visitor", &v.visitor),
                ("request_ref", &v.request_ref),
                ("approver", &v.approver),
            ] {
                if value.trim().is_empty() {
                    return Err(fail(field, format!("{field} is empty")));
                }
            }
            let from = v.from.resolve(&tz).map_err(|m| fail("from", m))?;
            let until = v.until.resolve(&tz).map_err(|m| fail("until", m))?;
            if until <= from {
                return Err(fail(
                    "until",
                    format!(
                        "the window ends ({}) before it starts ({})",
                        v.until, v.from
                    ),
                ));
            }
            if let Some(ended) = &v.ended_at {
                ended.resolve(&tz).map_err(|m| fail("ended_at", m))?;
            }
            let Some((_, badge_uid)) = badges.get(v.badge.as_str()) else {
                if !v.is_open() {
                    // History: the badge may have left the pool since.
                    continue;
                }
                return Err(fail(
                    "badge",
                    format!("badge {} is not in the badge pool ([[badge]])", v.badge),
                ));
            };
            if !v.is_open() {
                continue;
            }
            match holder(&v.host) {
                None => {
                    return Err(fail(
                        "host",
                        format!("host {:?} is not a holder in the register", v.host),
                    ))
                }
                Some(h) if h.role == Role::Visitor => {
                    return Err(fail(
                        "host",
                        format!("host {:?} is a visitor; a host is staff or escort", v.host),
                    ))
                }
                Some(_) => {}
            }
            if let Some(escort) = &v.escort {
                match holder(escort) {
                    None => {
                        return Err(fail(
                            "escort",
                            format!("escort {escort:?} is not a holder in the register"),
                        ))
                    }
                    Some(h) if h.role == Role::Visitor => {
                        return Err(fail(
                            "escort",
                            format!("escort {escort:?} is a visitor; an escort is staff or escort"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let Some(&prev) = in_use.get(v.badge.as_str()) {
                let other = &reg.visits[prev];
                return Err(fail(
                    "badge",
                    format!(
                        "badge {} is in use by visit {} (ends {})",
                        v.badge, other.id, other.until
                    ),
                ));
            }
            in_use.insert(v.badge.as_str(), i);
            if until <= now {
                // The window is over: the badge opens nothing until the visit is ended and the
                // badge issued again.
                continue;
            }
            let hash = card_key.hash(badge_uid);
            entries.push(Entry {
                card: hash,
                holder: v.badge.clone(),
                name: v.visitor.clone(),
                role: Role::Visitor,
                valid_from: from,
                valid_until: until,
                doors: None,
                schedule: Vec::new(),
                request_ref: v.request_ref.clone(),
                approver: v.approver.clone(),
            });
            visits.push(Visit {
                id: v.id.clone(),
                badge: hash,
                visitor: v.visitor.clone(),
                host: v.host.clone(),
                valid_from: from,
                valid_until: until,
            });
        }

        for (r, rev) in reg.revoked.iter().enumerate() {
            let key = |field: &str| format!("revoked[{r}].{field}");
            rev.card
                .parse::<Uid>()
                .map_err(|e| self.error(&key("card"), format!("{e}")))?;
            rev.at.resolve(&tz).map_err(|m| self.error(&key("at"), m))?;
            if rev.holder.is_some() == rev.badge.is_some() {
                return Err(self.error(
                    &key("holder"),
                    "a revocation names either a holder or a badge",
                ));
            }
        }

        let payload = Payload {
            format: PAYLOAD_FORMAT,
            site: reg.site.clone(),
            doors: reg.doors.clone(),
            version,
            issued_at: now,
            expires_at: now + valid_for,
            time_zone: reg.time_zone.clone(),
            entries,
        };
        check_payload(&payload).map_err(|m| self.error("", m))?;
        crate::core::visit::check_visits(&payload.entries, &visits)
            .map_err(|m| self.error("visit", m))?;
        Ok((payload, visits))
    }
}
