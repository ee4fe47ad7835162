//! A person at the kiosk camera, made from real frames of one person at different head
//! poses (the shared set's live webcam clip `video/live/apfol_real2.webm`: facing the
//! camera, turned to their own left and right, looking up, eyes closed mid-blink), who
//! follows the kiosk's prompts: puts the face in the oval wherever it is drawn, performs the
//! step asked for. Tests render the camera frames this person shows; the kiosk sees nothing
//! but those frames.

use std::path::Path;

use faceid_core::Image;
use faceid_core::geometry::BoundingBox;
use image::RgbImage;

/// What the person does in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Faces the camera, face in the oval.
    Front,
    /// Head turned to their own left.
    TurnLeft,
    /// Head turned to their own right.
    TurnRight,
    /// Looks up.
    LookUp,
    /// Eyes closed (half a blink).
    EyesClosed,
    /// Facing the camera, a third closer.
    Closer,
    /// Nobody in front of the camera.
    Away,
}

impl Act {
    /// The act that answers a kiosk step (`turn_left`, `turn_right`, `look_up`,
    /// `come_closer`; a blink is two acts, see [`Follower`]).
    pub fn for_step(step: &str) -> Act {
        match step {
            "turn_left" => Act::TurnLeft,
            "turn_right" => Act::TurnRight,
            "look_up" => Act::LookUp,
            "blink" => Act::EyesClosed,
            "come_closer" => Act::Closer,
            _ => Act::Front,
        }
    }

    /// The wrong answer to a step: a look-up for a left turn, a left turn for anything else
    /// (deliberate movements the kiosk did not ask for).
    pub fn wrong_for(step: &str) -> Act {
        match step {
            "turn_left" => Act::LookUp,
            _ => Act::TurnLeft,
        }
    }
}

/// A frame of the clip, with its face box.
#[derive(Debug, Clone)]
struct Pose {
    image: RgbImage,
    face: BoundingBox,
}

/// What the camera shows in one frame: a frame of the clip, `scale` times nearer than the
/// person sat (coming closer), and the coarse act it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shot {
    /// The clip frame.
    pub frame: usize,
    /// Seen in a mirror: the clip's left turn, mirrored, is the right turn (the clip's own
    /// right turn is too fast to follow: 10-15 degrees between frames, eyes shut).
    pub mirrored: bool,
    /// Nearness (1 = as the person sat in front of the clip's camera).
    pub scale: f32,
    /// The act this frame is part of.
    pub act: Act,
}

/// The person of the clip, as a set of its frames.
#[derive(Debug, Clone)]
pub struct Person {
    poses: std::collections::BTreeMap<usize, Pose>,
    background: image::Rgb<u8>,
}

/// The kiosk's oval: centre x, centre y, width, height, in thousandths of the frame.
pub type Oval = (u16, u16, u16, u16);

/// Camera frame size.
pub const FRAME: (u32, u32) = (640, 480);
/// The face box's height over the oval's when the person fills it.
const FILL: f32 = 0.76;

/// The clip's frames for each act, in the order the head moves, as the pose network and the
/// eye model measure them: facing the camera 2-10 (yaw -9, pitch -3: the neutral pose);
/// looking up 12-21 (pitch up to +11); turning to their own left 45-55 (yaw -1 to +21, 6
/// degrees a frame: 30 degrees from the neutral pose); the right turn is the left turn
/// mirrored (yaw +1 to -21: only 12 degrees from this person's neutral pose, which faces a
/// little to their right, so it is shown but rarely completed); a blink 195 (open), 197-198
/// (closed), 199 (open).
const FRONT: [usize; 5] = [2, 4, 6, 8, 10];
const LOOK_UP: [usize; 6] = [12, 14, 16, 18, 20, 21];
const TURN_LEFT: [usize; 6] = [45, 47, 49, 51, 53, 55];
const BLINK: [usize; 4] = [195, 197, 198, 199];
/// Facing the camera, eyes open: the card's portrait.
const PORTRAIT: usize = 156;

fn clip_frames(eval: &Path, wanted: &[usize]) -> Vec<(usize, RgbImage)> {
    let path = eval.join("video/live/apfol_real2.webm");
    let mut stream =
        faceid_video::FrameStream::open(&path, 4096 * 4096).expect("the apfol_real2 clip decodes");
    let mut frames = Vec::new();
    let mut index = 0;
    while let Some(frame) = stream.next_frame() {
        if wanted.contains(&index) {
            frames.push((index, frame.image));
        }
        index += 1;
    }
    assert_eq!(frames.len(), wanted.len(), "the clip has every frame used");
    frames
}

fn pose(image: RgbImage) -> Pose {
    let decoded = Image::from_rgb(image.width(), image.height(), image.as_raw().clone())
        .expect("a valid image");
    let face = crate::engine()
        .single_face(&decoded)
        .expect("one face in the frame")
        .bbox;
    Pose { image, face }
}

impl Act {
    /// The clip frames of this act, in order (the way back is the reverse).
    fn path(self) -> Vec<Shot> {
        let shots = |frames: &[usize], act| {
            frames
                .iter()
                .map(|&frame| Shot {
                    frame,
                    mirrored: act == Act::TurnRight,
                    scale: 1.0,
                    act,
                })
                .collect()
        };
        match self {
            Act::Front | Act::Away => shots(&FRONT, Act::Front),
            Act::LookUp => shots(&LOOK_UP, self),
            Act::TurnRight => shots(&TURN_LEFT, self),
            Act::TurnLeft => shots(&TURN_LEFT, self),
            Act::EyesClosed => shots(&BLINK, self),
            Act::Closer => [1.1f32, 1.2, 1.3, 1.4]
                .iter()
                .map(|&scale| Shot {
                    frame: FRONT[2],
                    mirrored: false,
                    scale,
                    act: self,
                })
                .collect(),
        }
    }
}

impl Person {
    /// The person of the shared set's `apfol_real2` live clip.
    pub fn apfol(eval: &Path) -> Person {
        let mut wanted: Vec<usize> =
            [&FRONT[..], &LOOK_UP[..], &TURN_LEFT[..], &BLINK[..]].concat();
        wanted.sort_unstable();
        wanted.dedup();
        let poses: std::collections::BTreeMap<usize, Pose> = clip_frames(eval, &wanted)
            .into_iter()
            .map(|(i, image)| (i, pose(image)))
            .collect();
        let front = &poses[&FRONT[2]].image;
        // The frame's own border colour continues the room where the frame was moved.
        let (w, h) = front.dimensions();
        let mut sum = [0u64; 3];
        let mut n = 0u64;
        for (x, y, p) in front.enumerate_pixels() {
            if x < 4 || y < 4 || x >= w - 4 || y >= h - 4 {
                for c in 0..3 {
                    sum[c] += u64::from(p[c]);
                }
                n += 1;
            }
        }
        let background = image::Rgb(sum.map(|s| (s / n.max(1)) as u8));
        Person { poses, background }
    }

    /// The camera frame of `shot` with the person's face filling `oval` (centre x, centre y,
    /// width, height in thousandths of the frame, camera coordinates).
    pub fn frame(&self, shot: Shot, oval: Oval) -> RgbImage {
        let mut canvas = RgbImage::from_pixel(FRAME.0, FRAME.1, self.background);
        let (Some(pose), Some(front)) = (self.poses.get(&shot.frame), self.poses.get(&FRONT[2]))
        else {
            return canvas;
        };
        if shot.act == Act::Away {
            return canvas;
        }
        let oval_h = f32::from(oval.3) / 1000.0 * FRAME.1 as f32;
        // Scaled like the front pose, so a turn does not change the distance.
        let scale = FILL * oval_h / front.face.height() * shot.scale;
        let (w, h) = (
            (pose.image.width() as f32 * scale).round().max(1.0) as u32,
            (pose.image.height() as f32 * scale).round().max(1.0) as u32,
        );
        let mut scaled =
            image::imageops::resize(&pose.image, w, h, image::imageops::FilterType::Triangle);
        if shot.mirrored {
            image::imageops::flip_horizontal_in_place(&mut scaled);
        }
        // The head and neck only (the shirt's print looks like a face to the detector),
        // around where the front pose's face is; that face lands on the oval's centre.
        let face = front.face;
        let mut centre = face.center();
        if shot.mirrored {
            centre.x = pose.image.width() as f32 - centre.x;
        }
        // (The bottles on the shelf beside the head look like a face too: the person sits
        // in front of a plain wall.)
        let (cw, ch) = (face.width() * 0.9 * scale, face.height() * 0.95 * scale);
        let crop = image::imageops::crop_imm(
            &scaled,
            (centre.x * scale - cw).max(0.0) as u32,
            (centre.y * scale - ch).max(0.0) as u32,
            (2.0 * cw) as u32,
            (1.65 * ch) as u32,
        )
        .to_image();
        let x = f32::from(oval.0) / 1000.0 * FRAME.0 as f32 - (centre.x * scale).min(cw);
        let y = f32::from(oval.1) / 1000.0 * FRAME.1 as f32 - (centre.y * scale).min(ch);
        image::imageops::overlay(&mut canvas, &crop, x.round() as i64, y.round() as i64);
        canvas
    }

    /// This person's ID photo: another frame of the clip than any the camera shows,
    /// cropped around the face passport-style (280x350).
    pub fn portrait(eval: &Path) -> RgbImage {
        let (_, frame) = clip_frames(eval, &[PORTRAIT]).remove(0);
        let face = pose(frame.clone()).face;
        // A passport-style crop around the face.
        let (fw, fh) = (face.width() * 1.6, face.height() * 2.0);
        let x0 = (face.center().x - fw / 2.0).max(0.0) as u32;
        let y0 = (face.center().y - fh * 0.45).max(0.0) as u32;
        let crop = image::imageops::crop_imm(
            &frame,
            x0,
            y0,
            (fw as u32).min(frame.width() - x0),
            (fh as u32).min(frame.height() - y0),
        )
        .to_image();
        image::imageops::resize(&crop, 280, 350, image::imageops::FilterType::CatmullRom)
    }

    /// A synthetic ID card of this person: another frame of the clip as its portrait, on a
    /// card background with a header band and text lines, as a flatbed scan.
    pub fn card(eval: &Path) -> RgbImage {
        let portrait = Person::portrait(eval);
        let mut card = RgbImage::from_pixel(1012, 638, image::Rgb([214, 226, 236]));
        for y in 0..70 {
            for x in 0..1012 {
                card.put_pixel(x, y, image::Rgb([28, 84, 140]));
            }
        }
        for line in 0..6u32 {
            let y0 = 150 + line * 62;
            for y in y0..y0 + 18 {
                for x in 400..(900 - line * 40) {
                    card.put_pixel(x, y, image::Rgb([60, 60, 70]));
                }
            }
        }
        image::imageops::overlay(&mut card, &portrait, 60, 130);
        card
    }
}

/// How a [`Follower`] answers the prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Does what is asked.
    Follow,
    /// Does the opposite turn (a replay made for another challenge).
    Wrong,
}

/// Turns the kiosk's prompt into what the person does next, the way a person moves: for a
/// new step, back to facing the camera (the way they came), a moment still, then the step's
/// movement frame by frame, held until the kiosk asks for something else.
#[derive(Debug, Clone)]
pub struct Follower {
    answer: Answer,
    last: Option<(String, u8)>,
    plan: std::collections::VecDeque<Shot>,
    hold: Option<Shot>,
    /// The movement being held, to come back from.
    away: Vec<Shot>,
    tick: usize,
}

/// Frames facing the camera before each step.
const SETTLE_FRAMES: usize = 2;

impl Follower {
    /// A person answering so.
    pub fn new(answer: Answer) -> Follower {
        Follower {
            answer,
            last: None,
            plan: std::collections::VecDeque::new(),
            hold: None,
            away: Vec::new(),
            tick: 0,
        }
    }

    fn front(&mut self) -> Shot {
        self.tick += 1;
        let path = Act::Front.path();
        path[self.tick % path.len()]
    }

    /// What the camera sees next for the prompt on screen: `step` is the step's wire name
    /// and number, or `None` when no step is asked (placing the face, closing).
    pub fn shot(&mut self, step: Option<(&str, u8)>) -> Shot {
        let key = step.map(|(name, number)| (name.to_string(), number));
        if key != self.last {
            self.last = key.clone();
            // Back to the camera, then still, then the new movement.
            let back: Vec<Shot> = self.away.drain(..).rev().collect();
            self.plan = back.into_iter().collect();
            self.hold = None;
            if let Some((name, _)) = key {
                for _ in 0..SETTLE_FRAMES {
                    let f = self.front();
                    self.plan.push_back(f);
                }
                let act = match self.answer {
                    Answer::Follow => Act::for_step(&name),
                    Answer::Wrong => Act::wrong_for(&name),
                };
                let path = act.path();
                self.plan.extend(path.iter().copied());
                if matches!(
                    act,
                    Act::TurnLeft | Act::TurnRight | Act::LookUp | Act::Closer
                ) {
                    self.away = path.clone();
                    self.hold = path.last().copied();
                }
            }
        }
        if let Some(shot) = self.plan.pop_front() {
            return shot;
        }
        // A blink the kiosk missed (the eyes shut too briefly or too long between its
        // frames): blink again after a moment, as a person would.
        if let Some((name, _)) = &self.last
            && self.answer == Answer::Follow
            && name == "blink"
        {
            for _ in 0..3 {
                let f = self.front();
                self.plan.push_back(f);
            }
            self.plan.extend(Act::EyesClosed.path());
        }
        match self.hold {
            Some(shot) => shot,
            None => self.front(),
        }
    }
}

/// A printed photo held up to the camera: a NUAA subject's live webcam frame, printed flat,
/// moved into the oval and turned like a head would turn (a plane, seen in perspective).
#[derive(Debug, Clone)]
pub struct Print {
    picture: Image,
    face: BoundingBox,
}

impl Print {
    /// The print of NUAA subject 1's live frame.
    pub fn nuaa(eval: &Path) -> Print {
        let bytes = std::fs::read(eval.join("spoof/live/nuaa/0001_00_00_01_0.jpg"))
            .expect("the NUAA frame");
        let picture = crate::engine().decode(&bytes).expect("decodes");
        let face = crate::engine()
            .single_face(&picture)
            .expect("one face")
            .bbox;
        Print { picture, face }
    }

    /// The camera frame of the print turned for `act`, its face filling `oval`.
    pub fn frame(&self, act: Act, oval: Oval) -> RgbImage {
        let (yaw, distance) = match act {
            Act::TurnLeft => (40.0f64, 1.0),
            Act::TurnRight => (-40.0, 1.0),
            Act::Closer => (0.0, 0.75),
            Act::Front | Act::Away | Act::LookUp | Act::EyesClosed => (0.0, 1.0),
        };
        let view = faceid_core::evaluation::planar_view(
            &self.picture,
            faceid_core::evaluation::PlanarPose {
                yaw: yaw.to_radians(),
                pitch: (yaw.abs() / 3.0).to_radians(),
                roll: 0.0,
                distance,
                shift: (0.0, 0.0),
            },
        )
        .expect("a planar view");
        let rgb = RgbImage::from_raw(view.width(), view.height(), view.rgb().to_vec())
            .expect("an RGB image");
        let mut canvas = RgbImage::from_pixel(FRAME.0, FRAME.1, image::Rgb([120, 120, 120]));
        let oval_h = f32::from(oval.3) / 1000.0 * FRAME.1 as f32;
        let scale = FILL * oval_h / self.face.height();
        let (w, h) = (
            (rgb.width() as f32 * scale).round().max(1.0) as u32,
            (rgb.height() as f32 * scale).round().max(1.0) as u32,
        );
        let scaled = image::imageops::resize(&rgb, w, h, image::imageops::FilterType::Triangle);
        let centre = self.face.center();
        let x = f32::from(oval.0) / 1000.0 * FRAME.0 as f32 - centre.x * scale;
        let y = f32::from(oval.1) / 1000.0 * FRAME.1 as f32 - centre.y * scale;
        image::imageops::overlay(&mut canvas, &scaled, x.round() as i64, y.round() as i64);
        canvas
    }
}
