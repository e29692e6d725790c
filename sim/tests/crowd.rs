//! Flash crowds shaped like the browser benchmark's: fans open the page
//! 150 ms apart, join the swarm as it loads, press play a second later and
//! listen to the end. The promise: the artist's server sends each track
//! about once per crowd, and nobody's playback stalls for it.
#![allow(clippy::unwrap_used)]

use fanswarm_sim::crowd::{self, Crowd, Track};

fn report(crowd: &Crowd, seed: u64) -> crowd::CrowdReport {
    report_in(crowd, crowd::world(crowd, seed), seed)
}

fn report_in(crowd: &Crowd, world: fanswarm_sim::World, seed: u64) -> crowd::CrowdReport {
    let (sim, report) = crowd::run(crowd, world);
    println!(
        "{} fans, {} B track, seed {seed}: origin {:.3} copies, from peers {:?}, \
         first audio {:?} s, {} stalled ({:.1} s), {} tracker messages",
        crowd.fans,
        crowd.track.bytes,
        report.origin_copies,
        report
            .from_peers
            .iter()
            .map(|f| (f * 100.0).round())
            .collect::<Vec<_>>(),
        report.first_audio,
        report.stalled_fans,
        report.stalled_secs,
        sim.tracker_messages,
    );
    for i in 0..sim.nodes.len() {
        assert!(
            sim.nodes[i].left || sim.assembled(i) == sim.data,
            "fan {i} holds exactly the track"
        );
    }
    assert!(report.complete, "every fan got the whole track");
    report
}

#[test]
fn ten_fans_cost_the_origin_about_one_copy_of_a_song() {
    let crowd = Crowd::default();
    for seed in [1, 2, 3] {
        let r = report(&crowd, seed);
        assert!(
            r.origin_copies <= 1.10,
            "seed {seed}: {:.3} copies",
            r.origin_copies
        );
        assert_eq!(r.stalled_fans, 0, "seed {seed}: nobody stalls");
        assert_eq!(r.first_audio.len(), crowd.fans, "every fan started playing");
    }
}

#[test]
fn ten_fans_of_an_uncompressed_wav_cost_at_most_one_and_a_half_copies() {
    // The worst case: 2.8 Mbit/s, which each fan must pass on. With the
    // crowd world's uplinks (calibrated on the browser benchmark) it costs
    // 1.12-1.24 copies.
    let crowd = Crowd {
        track: Track::WAV,
        ..Crowd::default()
    };
    for seed in [1, 2] {
        let r = report(&crowd, seed);
        assert!(
            r.origin_copies <= 1.5,
            "seed {seed}: {:.3} copies",
            r.origin_copies
        );
        assert_eq!(r.first_audio.len(), crowd.fans, "every fan started playing");
        assert!(
            r.stalled_secs < 3.0,
            "seed {seed}: {:.1} s stalled",
            r.stalled_secs
        );
    }
}

#[test]
fn slow_uplinks_cost_an_uncompressed_wav_less_than_two_copies() {
    // Uplinks of 1 MB/s barely carry the WAV crowd: the origin fills in
    // (1.7-1.8 copies), but the policy keeps it from sliding back to the
    // 3 copies of joining on press with every urgent block asked twice,
    // and nobody stalls for long.
    let crowd = Crowd {
        track: Track::WAV,
        ..Crowd::default()
    };
    for seed in [1, 2] {
        let mut world = crowd::world(&crowd, seed);
        world.peer_up = 1_000_000;
        let r = report_in(&crowd, world, seed);
        assert!(
            r.origin_copies < 2.0,
            "seed {seed}: {:.3} copies",
            r.origin_copies
        );
        assert_eq!(r.first_audio.len(), crowd.fans, "every fan started playing");
        assert!(
            r.stalled_secs < 3.0,
            "seed {seed}: {:.1} s stalled",
            r.stalled_secs
        );
    }
}

#[test]
fn a_hundred_fans_cost_the_origin_about_one_copy() {
    // Fans arrive for 15 s, well after the first have started: a newcomer
    // waits briefly for neighbours rather than take its first pieces from
    // the origin.
    let crowd = Crowd {
        fans: 100,
        ..Crowd::default()
    };
    let r = report(&crowd, 1);
    assert!(r.origin_copies <= 1.05, "{:.3} copies", r.origin_copies);
    assert_eq!(r.stalled_fans, 0, "nobody stalls");
}

#[test]
fn a_fan_alone_starts_from_the_web_seed_at_once() {
    let crowd = Crowd {
        fans: 1,
        ..Crowd::default()
    };
    let r = report(&crowd, 4);
    // One round trip to the origin plus the first piece at 4 MB/s, polled
    // every 10 ms: well under a quarter of a second.
    assert!(
        r.first_audio[0] < 0.25,
        "first audio after {:?} s",
        r.first_audio
    );
    assert!(
        (r.origin_copies - 1.0).abs() < 1e-9,
        "a fan alone gets exactly one copy from the origin: {}",
        r.origin_copies
    );
}

#[test]
fn metered_fans_upload_nothing_yet_get_the_track_mostly_from_fans() {
    // Three fans in ten on cellular data: they give nothing, the others
    // carry them, and nobody stalls.
    let crowd = Crowd {
        metered: 3,
        ..Crowd::default()
    };
    for seed in [1, 2] {
        let (sim, r) = crowd::run(&crowd, crowd::world(&crowd, seed));
        let metered: Vec<usize> = (0..crowd.fans).filter(|&i| crowd.is_metered(i)).collect();
        println!(
            "seed {seed}: metered fans {metered:?}: origin {:.3} copies, from peers {:?}, \
             uploaded {:?}",
            r.origin_copies,
            r.from_peers
                .iter()
                .map(|f| (f * 100.0).round())
                .collect::<Vec<_>>(),
            (0..crowd.fans)
                .map(|i| sim.engine_stats(i).uploaded)
                .collect::<Vec<_>>(),
        );
        assert!(r.complete, "seed {seed}: every fan got the whole track");
        assert_eq!(metered.len(), 3);
        for &i in &metered {
            assert_eq!(
                sim.engine_stats(i).uploaded,
                0,
                "seed {seed}: fan {i} gave nothing"
            );
            assert!(
                r.from_peers[i] > 0.5,
                "seed {seed}: fan {i} got most of it from fans: {:.2}",
                r.from_peers[i]
            );
        }
        assert_eq!(r.stalled_fans, 0, "seed {seed}: nobody stalls");
        assert!(
            r.origin_copies <= 1.25,
            "seed {seed}: {:.3} copies",
            r.origin_copies
        );
    }
}
