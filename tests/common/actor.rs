//! The person in front of the real kiosk (UI tests, measurements): reads what the kiosk
//! shows through WebDriver and answers with camera frames written into a `watch:` camera
//! folder, one movement per analysed frame.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::person::{Act, Answer, Follower, Oval, Person, Print, Shot};
use crate::webdriver::Kiosk;

/// What the kiosk shows, as the person in front of it reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shown {
    pub screen: String,
    pub oval: Option<Oval>,
    pub step: Option<(String, u8)>,
    pub retry: bool,
    pub instruction: String,
    pub preview: bool,
}

const SHOWN: &str = "const st = document.getElementById('step'); \
    const g = document.getElementById('guide').dataset.oval || ''; \
    return [document.body.dataset.screen || '', g, st.hidden ? '' : (st.dataset.step || ''), \
    Number(st.dataset.number || 0), !document.getElementById('retry').hidden, \
    document.getElementById('instruction').dataset.key || '', \
    document.getElementById('preview').naturalWidth > 0]";

/// What the kiosk shows now.
pub async fn shown(kiosk: &Kiosk) -> Shown {
    let v = kiosk.js(SHOWN).await;
    let oval = v[1].as_str().and_then(|o| {
        let n: Vec<u16> = o.split(',').filter_map(|x| x.parse().ok()).collect();
        (n.len() == 4).then(|| (n[0], n[1], n[2], n[3]))
    });
    let step = v[2]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|s| (s.to_string(), v[3].as_u64().unwrap_or(0) as u8));
    Shown {
        screen: v[0].as_str().unwrap_or("").to_string(),
        oval,
        step,
        retry: v[4].as_bool().unwrap_or(false),
        instruction: v[5].as_str().unwrap_or("").to_string(),
        preview: v[6].as_bool().unwrap_or(false),
    }
}

/// The person in front of the camera: each frame they show is written into the `watch:`
/// camera's folder, in answer to what the kiosk shows.
#[derive(Debug)]
pub struct Actor {
    dir: tempfile::TempDir,
    seq: u64,
    /// How the person answers the prompts.
    pub follower: Follower,
}

/// Who stands in front of the camera.
#[derive(Debug)]
pub enum Sitter<'a> {
    /// The person, following the prompts.
    Person(&'a Person),
    /// A print of a face, moved and turned like the person would.
    Print(&'a Print),
    /// The person, too far away (the oval asks them to come closer).
    Far(&'a Person),
    /// Nobody (the room).
    Away(&'a Person),
}

impl Actor {
    /// Nobody yet, following the prompts once someone stands there.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Actor {
        Actor {
            dir: tempfile::tempdir().unwrap(),
            seq: 0,
            follower: Follower::new(Answer::Follow),
        }
    }

    /// The kiosk's `--camera` spec for this person.
    pub fn camera(&self) -> String {
        format!("watch:{}", self.dir.path().display())
    }

    /// Shows one frame: `who`, answering what the kiosk shows.
    pub fn show(&mut self, who: &Sitter<'_>, shown: &Shown) {
        let oval = shown.oval.unwrap_or((500, 500, 330, 560));
        let step = if shown.retry && shown.step.is_none() {
            None
        } else {
            shown.step.clone()
        };
        let shot = self
            .follower
            .shot(step.as_ref().map(|(s, n)| (s.as_str(), *n)));
        let frame = match who {
            Sitter::Person(p) => p.frame(shot, oval),
            Sitter::Print(p) => p.frame(shot.act, oval),
            Sitter::Far(p) => p.frame(
                Shot {
                    scale: 0.55,
                    ..shot
                },
                oval,
            ),
            Sitter::Away(p) => p.frame(
                Shot {
                    act: Act::Away,
                    ..shot
                },
                oval,
            ),
        };
        self.seq += 1;
        let partial = self.dir.path().join("partial.bmp");
        frame.save(&partial).unwrap();
        std::fs::rename(
            &partial,
            self.dir.path().join(format!("f{:08}.bmp", self.seq)),
        )
        .unwrap();
        if self.seq > 4 {
            let _ = std::fs::remove_file(self.dir.path().join(format!("f{:08}.bmp", self.seq - 4)));
        }
    }
}

/// Plays `who` in front of the kiosk until it leaves the camera screen (or `timeout`),
/// taking the screenshots `shoot` names for what is shown (each name once).
pub async fn perform(
    kiosk: &Kiosk,
    actor: &mut Actor,
    who: &Sitter<'_>,
    timeout: Duration,
    shots: &mut std::collections::BTreeSet<String>,
    mut shoot: impl FnMut(&Shown) -> Option<String>,
) -> Vec<Shown> {
    let until = std::time::Instant::now() + timeout;
    let mut seen: Vec<Shown> = Vec::new();
    while std::time::Instant::now() < until {
        let now = shown(kiosk).await;
        if now.screen != "camera" {
            seen.push(now);
            break;
        }
        if now.preview
            && let Some(name) = shoot(&now)
            && shots.insert(name.clone())
        {
            kiosk.screenshot(&name).await;
        }
        actor.show(who, &now);
        if seen.last().map(|s| (&s.step, s.retry)) != Some((&now.step, now.retry)) {
            println!(
                "kiosk shows: step {:?}, retry {}, {}",
                now.step, now.retry, now.instruction
            );
        }
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        // About the kiosk's analysis rate: one movement per analysed frame.
        tokio::time::sleep(Duration::from_millis(170)).await;
    }
    seen
}
