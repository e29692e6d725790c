//! Whether this fan uploads: the page's policy (`upload`, `uploadCap`) and
//! the link the browser says it is on (the Network Information API).
//!
//! Under `auto` (the default) a fan on cellular data
//! (`navigator.connection.type == "cellular"`) or with a data saver on
//! (`navigator.connection.saveData`) uploads nothing; elsewhere, and in a
//! browser without the API (Firefox, Safari), it shares. `on` shares
//! whatever the link, `off` never does. The cap (bytes per second) bounds
//! what is shared when sharing. The engine carries it out
//! (`swarm::engine::Upload`): a fan that does not upload still announces and
//! gets pieces from fans, and costs the artist less than the server alone.
//! The link is read again on `navigator.connection`'s `change`: a fan who
//! leaves Wi-Fi mid-track stops uploading, and resumes when back.

use gloo_events::EventListener;
use swarm::engine::Upload;
use wasm_bindgen::JsValue;

use crate::js::{self, JsError, property};

use super::{Session, dispatch};

/// The page's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadMode {
    /// Off on cellular data or with a data saver on; on otherwise.
    #[default]
    Auto,
    /// Always share.
    On,
    /// Never share.
    Off,
}

/// The page's policy: the mode and a cap in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadSetting {
    /// `auto`, `on` or `off`.
    pub mode: UploadMode,
    /// Piece bytes per second at most while sharing; 0 is off.
    pub cap: Option<u32>,
}

impl UploadSetting {
    /// Share whatever the link: a tab that shares a file (`/share`) is
    /// there to upload it.
    pub const ALWAYS: UploadSetting = UploadSetting {
        mode: UploadMode::On,
        cap: None,
    };

    /// From a mode name (absent: `auto`) and a cap (absent: none).
    pub fn parse(mode: Option<&str>, cap: Option<f64>) -> Result<UploadSetting, JsError> {
        let mode = match mode {
            None | Some("auto") => UploadMode::Auto,
            Some("on") => UploadMode::On,
            Some("off") => UploadMode::Off,
            Some(other) => {
                return Err(JsError(format!(
                    "upload {other:?}: use \"auto\" (no upload on cellular data or with a \
                     data saver on), \"on\" or \"off\""
                )));
            }
        };
        let cap = match cap {
            None => None,
            Some(n) if n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX) => Some(n as u32),
            Some(n) => {
                return Err(JsError(format!(
                    "upload cap {n}: give bytes per second, from 0 (none) to {}",
                    u32::MAX
                )));
            }
        };
        Ok(UploadSetting { mode, cap })
    }

    /// `options.upload` and `options.uploadCap` of `load`.
    pub fn from_options(options: &JsValue) -> Result<UploadSetting, JsError> {
        let mode = property(options, "upload").map(|v| v.as_string().unwrap_or_default());
        let cap =
            match property(options, "uploadCap") {
                None => None,
                Some(v) => Some(v.as_f64().ok_or_else(|| {
                    JsError("uploadCap: give bytes per second as a number".into())
                })?),
            };
        UploadSetting::parse(mode.as_deref(), cap)
    }
}

/// Why this fan shares nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharingOff {
    /// The browser has no WebRTC data channels.
    NoWebRtc,
    /// On cellular data (`auto`).
    Cellular,
    /// A data saver is on (`auto`).
    SaveData,
    /// The page said `off` (or a cap of 0).
    Page,
}

impl SharingOff {
    /// Its name in `stats().sharingOff`.
    pub fn name(self) -> &'static str {
        match self {
            SharingOff::NoWebRtc => "webrtc",
            SharingOff::Cellular => "cellular",
            SharingOff::SaveData => "saveData",
            SharingOff::Page => "page",
        }
    }

    /// The one warning when sharing turns off for this reason.
    fn message(self) -> &'static str {
        match self {
            SharingOff::NoWebRtc => "not sharing: this browser lacks WebRTC data channels",
            SharingOff::Cellular => {
                "not sharing: cellular data (this fan uploads nothing while on a cellular \
                 connection, and still gets the track from fans)"
            }
            SharingOff::SaveData => {
                "not sharing: data saver on (this fan uploads nothing while the browser \
                 saves data, and still gets the track from fans)"
            }
            SharingOff::Page => {
                "not sharing: sharing is off by the page (this fan uploads nothing, and \
                 still gets the track from fans)"
            }
        }
    }
}

/// What the browser says of its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Link {
    cellular: bool,
    save_data: bool,
}

/// `navigator.connection`, where the browser has it.
fn connection() -> Option<JsValue> {
    let window = web_sys::window()?;
    property(&window.navigator(), "connection")
}

fn link() -> Link {
    let Some(c) = connection() else {
        return Link::default();
    };
    Link {
        cellular: property(&c, "type").and_then(|t| t.as_string()).as_deref() == Some("cellular"),
        save_data: property(&c, "saveData").and_then(|v| v.as_bool()) == Some(true),
    }
}

/// What the engine may upload under `setting` on `link`, and why not.
fn decide(setting: UploadSetting, link: Link) -> (Upload, Option<SharingOff>) {
    let off = match setting.mode {
        UploadMode::Off => Some(SharingOff::Page),
        UploadMode::On => None,
        UploadMode::Auto if link.save_data => Some(SharingOff::SaveData),
        UploadMode::Auto if link.cellular => Some(SharingOff::Cellular),
        UploadMode::Auto => None,
    }
    .or((setting.cap == Some(0)).then_some(SharingOff::Page));
    match (off, setting.cap) {
        (Some(why), _) => (Upload::Off, Some(why)),
        (None, Some(cap)) => (Upload::Capped(cap), None),
        (None, None) => (Upload::Unlimited, None),
    }
}

impl Session {
    /// Reads the link again whenever the browser says it changed.
    pub(super) fn listen_to_link(&mut self) {
        let Some(connection) = connection() else {
            return;
        };
        let Ok(target) = wasm_bindgen::JsCast::dyn_into::<web_sys::EventTarget>(connection) else {
            return;
        };
        let weak = self.me.clone();
        self.listeners
            .push(EventListener::new(&target, "change", move |_| {
                dispatch(&weak, |s| s.apply_upload());
            }));
    }

    /// A new policy from the page (`track.setUpload`).
    pub fn set_upload_setting(&mut self, setting: UploadSetting) {
        self.settings.upload = setting;
        self.apply_upload();
    }

    /// Tells the node what it may upload now, and the page when sharing
    /// turned off (one `warning`) or its reason changed (`sharing`).
    pub(super) fn apply_upload(&mut self) {
        let (upload, off) = decide(self.settings.upload, link());
        if self.node.upload() != upload {
            self.node.set_upload(js::now(), upload);
        }
        if off != self.sharing_off {
            self.sharing_off = off;
            if self.started {
                self.tell_sharing();
            }
        }
    }

    /// The `sharing` event (detail: why not, or null) and, when off, the
    /// one warning that says why.
    pub(super) fn tell_sharing(&self) {
        if !self.can_share() {
            return; // the browser's own warning said it
        }
        let detail = self
            .sharing_off
            .map_or(JsValue::NULL, |off| JsValue::from_str(off.name()));
        self.emit("sharing", detail);
        if let Some(off) = self.sharing_off {
            self.warn(off.message());
        }
    }

    /// Why this fan shares nothing now, if it does not.
    pub fn sharing_off(&self) -> Option<SharingOff> {
        if !self.can_share() {
            return Some(SharingOff::NoWebRtc);
        }
        self.sharing_off
    }

    /// The upload cap in force, bytes per second.
    pub fn upload_cap(&self) -> Option<u32> {
        self.node.upload().cap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_stops_on_cellular_or_data_saver_and_the_page_decides_otherwise() {
        let wifi = Link::default();
        let cell = Link {
            cellular: true,
            save_data: false,
        };
        let saver = Link {
            cellular: false,
            save_data: true,
        };
        let auto = UploadSetting::default();
        assert_eq!(decide(auto, wifi), (Upload::Unlimited, None));
        assert_eq!(
            decide(auto, cell),
            (Upload::Off, Some(SharingOff::Cellular))
        );
        assert_eq!(
            decide(auto, saver),
            (Upload::Off, Some(SharingOff::SaveData))
        );
        let on = UploadSetting::parse(Some("on"), Some(65536.0)).expect("valid");
        assert_eq!(decide(on, cell), (Upload::Capped(65536), None));
        let off = UploadSetting::parse(Some("off"), None).expect("valid");
        assert_eq!(decide(off, wifi), (Upload::Off, Some(SharingOff::Page)));
        let zero = UploadSetting::parse(None, Some(0.0)).expect("valid");
        assert_eq!(decide(zero, wifi), (Upload::Off, Some(SharingOff::Page)));
        assert!(UploadSetting::parse(Some("sometimes"), None).is_err());
        assert!(UploadSetting::parse(None, Some(-1.0)).is_err());
        assert!(UploadSetting::parse(None, Some(f64::NAN)).is_err());
    }
}
