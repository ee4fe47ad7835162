//! Prints what the decoder makes of each video given on the command line.
fn main() {
    for path in std::env::args().skip(1) {
        let t = std::time::Instant::now();
        match faceid_video::decode_file(
            std::path::Path::new(&path),
            &faceid_video::SamplingPlan::default(),
        ) {
            Ok(clip) => println!(
                "{path}: {} frames, {:.2} s, {}, rot {}, first {}x{}, {:?}",
                clip.frames.len(),
                clip.duration_secs,
                clip.codec,
                clip.rotation_degrees,
                clip.frames[0].image.width(),
                clip.frames[0].image.height(),
                t.elapsed()
            ),
            Err(e) => println!("{path}: {e} ({:?})", t.elapsed()),
        }
    }
}
