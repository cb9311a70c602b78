//! The event stream (`GET /events`): every container and image action is published here, kept in
//! a bounded history for `since`, and fanned out to live subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bollard_stubs::models::{EventActor, EventMessage, EventMessageTypeEnum};
use tokio::sync::broadcast;

/// Events kept for `since` queries.
const HISTORY: usize = 1024;

/// The event bus.
pub struct Events {
    history: Mutex<VecDeque<EventMessage>>,
    live: broadcast::Sender<EventMessage>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            history: Mutex::new(VecDeque::new()),
            live: broadcast::channel(HISTORY).0,
        }
    }
}

impl Events {
    /// Publishes an event of `kind` ("container", "image", ...) about `id`.
    pub fn publish(
        &self,
        kind: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attributes: HashMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let event = EventMessage {
            typ: Some(kind),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attributes),
            }),
            scope: Some(bollard_stubs::models::EventMessageScopeEnum::LOCAL),
            time: Some(now.timestamp()),
            time_nano: Some(now.timestamp_nanos_opt().unwrap_or_default()),
        };
        let mut history = self.history.lock().expect("events lock");
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        let _ = self.live.send(event);
    }

    /// Past events (oldest first) and a receiver of the next ones, taken atomically so none is
    /// missed or doubled.
    pub fn subscribe(&self) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let history = self.history.lock().expect("events lock");
        (history.iter().cloned().collect(), self.live.subscribe())
    }
}
