//! The bundled retention presets (`schemas/retention-presets.toml`).

use std::sync::OnceLock;

use serde::Deserialize;

use crate::Age;

/// A named retention requirement a rule can refer to (`presets = ["hipaa"]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// The name rules use.
    pub name: String,
    /// The minimum age before a partition may expire; `None` when the
    /// regulation sets no period (the rule must set `expire_after`).
    pub retention: Option<Age>,
    /// The window during which data must stay immediately available: a
    /// partition may not be tiered to a cold store before this age.
    pub hot: Option<Age>,
    /// The citation the values come from.
    pub source: String,
    /// How strata applies it.
    pub note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    preset: Vec<Preset>,
}

/// The bundled presets, in file order. Parsed once; panics only if the
/// bundled file is invalid, which a test rules out.
pub fn presets() -> &'static [Preset] {
    static PRESETS: OnceLock<Vec<Preset>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        let text = include_str!("../../../schemas/retention-presets.toml");
        toml::from_str::<PresetFile>(text)
            .expect("schemas/retention-presets.toml is valid")
            .preset
    })
}

/// The bundled preset called `name`.
pub(crate) fn preset(name: &str) -> Option<&'static Preset> {
    presets().iter().find(|preset| preset.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_presets_have_the_documented_values() {
        let age = |text| Some(Age::parse(text).unwrap());
        let expected = [
            (
                "pci-dss-4",
                age("12mo"),
                age("3mo"),
                "PCI DSS v4.0.1 Requirement 10.5.1: retain audit log history for at least 12 months, with at least the most recent three months immediately available for analysis",
            ),
            (
                "hipaa",
                age("6y"),
                None,
                "45 CFR 164.316(b)(2)(i): retain required documentation for 6 years from creation or the date last in effect, whichever is later",
            ),
            (
                "sox-7y",
                age("7y"),
                None,
                "17 CFR 210.2-06 (SOX section 802): retain audit records for seven years",
            ),
            (
                "sec-17a-4",
                age("6y"),
                age("2y"),
                "17 CFR 240.17a-4(a): preserve for at least six years, the first two years in an easily accessible place",
            ),
            (
                "ccpa-requests",
                age("24mo"),
                None,
                "11 CCR 7101(a): maintain records of consumer requests for at least 24 months",
            ),
            (
                "gdpr",
                None,
                None,
                "GDPR Art. 5(1)(e) storage limitation: no fixed period; the controller must set one per purpose",
            ),
            (
                "iso27001",
                None,
                None,
                "ISO/IEC 27001:2022 Annex A 8.15: retention defined by the organisation",
            ),
        ];
        let presets = presets();
        assert_eq!(presets.len(), expected.len());
        for (preset, (name, retention, hot, source)) in presets.iter().zip(expected) {
            assert_eq!(preset.name, name);
            assert_eq!(preset.retention, retention, "{name}");
            assert_eq!(preset.hot, hot, "{name}");
            assert_eq!(preset.source, source, "{name}");
            assert!(
                preset.note.as_deref().is_some_and(|note| !note.is_empty()),
                "{name}"
            );
            assert_eq!(super::preset(name), Some(preset));
        }
        assert_eq!(super::preset("sox"), None);
    }
}
