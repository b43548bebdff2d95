//! Every MQTT topic and filter Pintu uses, built in one place so that the door that publishes
//! and the office that subscribes can never disagree (`docs/mqtt.md` has the same tree):
//!
//! ```text
//! {prefix}/{site}/list               retained, site-wide signed list   (office → doors)
//! {prefix}/{site}/{door}/list        retained, one door's signed list  (office → door)
//! {prefix}/{site}/{door}/commands    signed commands                   (office → door)
//! {prefix}/{site}/{door}/events      events, QoS 1                     (door → archive)
//! {prefix}/{site}/{door}/status      retained status, last will        (door → office)
//! ```

/// `{prefix}/{site}/list`: the site's retained list.
pub fn site_list(prefix: &str, site: &str) -> String {
    format!("{prefix}/{site}/list")
}

/// `{prefix}/{site}/{door}/list`: one door's retained list.
pub fn door_list(prefix: &str, site: &str, door: &str) -> String {
    format!("{prefix}/{site}/{door}/list")
}

/// `{prefix}/{site}/{door}/commands`: signed commands for one door.
pub fn commands(prefix: &str, site: &str, door: &str) -> String {
    format!("{prefix}/{site}/{door}/commands")
}

/// `{prefix}/{site}/{door}/events`: one door's events.
pub fn events(prefix: &str, site: &str, door: &str) -> String {
    format!("{prefix}/{site}/{door}/events")
}

/// `{prefix}/{site}/{door}/status`: one door's retained status.
pub fn status(prefix: &str, site: &str, door: &str) -> String {
    format!("{prefix}/{site}/{door}/status")
}

/// `{prefix}/{site}/+/events`: every door's events (the archive's subscription).
pub fn events_filter(prefix: &str, site: &str) -> String {
    events(prefix, site, "+")
}

/// `{prefix}/{site}/+/status`: every door's retained status (`pintuctl doors`).
pub fn status_filter(prefix: &str, site: &str) -> String {
    status(prefix, site, "+")
}

/// The door level of a door topic (`{prefix}/{site}/{door}/events` → `door`): the level before
/// the last. `None` for a topic with fewer than two levels.
pub fn door_of(topic: &str) -> Option<&str> {
    topic.rsplit('/').nth(1)
}

/// One door's topics.
#[derive(Debug, Clone)]
pub struct Topics {
    /// `{prefix}/{site}/{door}/events`
    pub events: String,
    /// `{prefix}/{site}/{door}/status` (retained)
    pub status: String,
    /// `{prefix}/{site}/list` (retained, site-wide)
    pub site_list: String,
    /// `{prefix}/{site}/{door}/list` (retained, this door)
    pub door_list: String,
    /// `{prefix}/{site}/{door}/commands`
    pub commands: String,
}

impl Topics {
    /// The topics of door `door` at `site` under `prefix`.
    pub fn new(prefix: &str, site: &str, door: &str) -> Topics {
        Topics {
            events: events(prefix, site, door),
            status: status(prefix, site, door),
            site_list: site_list(prefix, site),
            door_list: door_list(prefix, site, door),
            commands: commands(prefix, site, door),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_tree_of_docs_mqtt_md() {
        let t = Topics::new("pintu", "dc1", "server-room");
        assert_eq!(t.events, "pintu/dc1/server-room/events");
        assert_eq!(t.status, "pintu/dc1/server-room/status");
        assert_eq!(t.site_list, "pintu/dc1/list");
        assert_eq!(t.door_list, "pintu/dc1/server-room/list");
        assert_eq!(t.commands, "pintu/dc1/server-room/commands");
        assert_eq!(events_filter("pintu", "dc1"), "pintu/dc1/+/events");
        assert_eq!(status_filter("pintu", "dc1"), "pintu/dc1/+/status");
        assert_eq!(door_of(&t.events), Some("server-room"));
        assert_eq!(door_of("events"), None);
    }
}
