//! Compartment sizes, parcel dimensions, which size a parcel fits, and parcel eligibility.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest side a locker accepts: 19 in = 482.6 mm, kept in tenths of a millimetre so that the
/// comparison is exact.
pub const MAX_SIDE_TENTH_MM: u64 = 4_826;
/// A parcel must weigh less than 35 lb = 15,876 g.
pub const WEIGHT_LIMIT_G: u64 = 15_876;

/// A compartment size. Ordered from smallest to largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// Inside 30 × 35 × 18 cm.
    Small,
    /// Inside 30 × 48 × 35 cm.
    Medium,
    /// Inside 45 × 60 × 35 cm.
    Large,
    /// Inside 55 × 70 × 45 cm.
    Oversized,
}

impl Size {
    /// Every size, smallest first.
    pub const ALL: [Size; 4] = [Size::Small, Size::Medium, Size::Large, Size::Oversized];

    /// Inside dimensions in millimetres, longest first.
    pub const fn inside_mm(self) -> [u32; 3] {
        match self {
            Size::Small => [350, 300, 180],
            Size::Medium => [480, 350, 300],
            Size::Large => [600, 450, 350],
            Size::Oversized => [700, 550, 450],
        }
    }

    /// The one-letter code used in compartment ids (`S`, `M`, `L`, `X`).
    pub const fn letter(self) -> char {
        match self {
            Size::Small => 'S',
            Size::Medium => 'M',
            Size::Large => 'L',
            Size::Oversized => 'X',
        }
    }

    /// Index of this size in [`Size::ALL`], for per-size arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The sizes at least as large as this one, smallest first.
    pub fn and_larger(self) -> impl Iterator<Item = Size> {
        Size::ALL.into_iter().filter(move |s| *s >= self)
    }

    /// The lowercase name used in JSON and URLs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
            Size::Oversized => "oversized",
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Size {
    type Err = UnknownSize;
    fn from_str(s: &str) -> Result<Self, UnknownSize> {
        Size::ALL
            .into_iter()
            .find(|size| size.as_str() == s)
            .ok_or_else(|| UnknownSize(s.to_owned()))
    }
}

/// A size name that is not one of `small`, `medium`, `large`, `oversized`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compartment size {0:?}; expected small, medium, large or oversized")]
pub struct UnknownSize(pub String);

/// A parcel's outside dimensions and weight, as the checkout service reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParcelSpec {
    /// Length in millimetres.
    pub length_mm: u32,
    /// Width in millimetres.
    pub width_mm: u32,
    /// Height in millimetres.
    pub height_mm: u32,
    /// Weight in grams.
    pub weight_g: u32,
}

/// Why a parcel cannot go into any locker; each variant names the limit it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ineligible {
    /// A dimension or the weight is zero.
    #[error("parcel {field} must be greater than zero")]
    Zero {
        /// The field that is zero.
        field: &'static str,
    },
    /// A side is longer than 19 in (482.6 mm).
    #[error("parcel side of {side_mm} mm exceeds the 482.6 mm (19 in) limit")]
    SideTooLong {
        /// The longest side, in millimetres.
        side_mm: u32,
    },
    /// Every side is within the limit, but the parcel fits no compartment in any orientation
    /// (for example 482 × 482 × 482 mm: the largest compartment is 700 × 550 × 450 mm inside).
    #[error(
        "parcel of {sides_mm:?} mm fits no compartment; the largest is 700 x 550 x 450 mm inside"
    )]
    TooBulky {
        /// The parcel's sides in millimetres, longest first.
        sides_mm: [u32; 3],
    },
    /// The parcel weighs 35 lb (15,876 g) or more.
    #[error("parcel weight of {weight_g} g is not under the 15876 g (35 lb) limit")]
    TooHeavy {
        /// The parcel's weight in grams.
        weight_g: u32,
    },
}

impl Ineligible {
    /// A stable machine-readable name of the limit that was broken.
    pub const fn limit(&self) -> &'static str {
        match self {
            Ineligible::Zero { .. } => "positive_dimensions",
            Ineligible::SideTooLong { .. } => "max_side",
            Ineligible::TooHeavy { .. } => "max_weight",
            Ineligible::TooBulky { .. } => "compartment_fit",
        }
    }
}

impl ParcelSpec {
    /// The three sides, longest first.
    pub fn sides_desc(&self) -> [u32; 3] {
        let mut sides = [self.length_mm, self.width_mm, self.height_mm];
        sides.sort_unstable_by(|a, b| b.cmp(a));
        sides
    }

    /// Checks the carrier limits: every side positive and at most 19 in, weight under 35 lb.
    pub fn check_eligible(&self) -> Result<(), Ineligible> {
        for (field, value) in [
            ("length_mm", self.length_mm),
            ("width_mm", self.width_mm),
            ("height_mm", self.height_mm),
            ("weight_g", self.weight_g),
        ] {
            if value == 0 {
                return Err(Ineligible::Zero { field });
            }
        }
        let longest = self.sides_desc()[0];
        if u64::from(longest) * 10 > MAX_SIDE_TENTH_MM {
            return Err(Ineligible::SideTooLong { side_mm: longest });
        }
        if u64::from(self.weight_g) >= WEIGHT_LIMIT_G {
            return Err(Ineligible::TooHeavy {
                weight_g: self.weight_g,
            });
        }
        Ok(())
    }

    /// Whether the parcel fits inside a compartment of `size` in some orientation: with both the
    /// parcel's and the compartment's sides sorted, each parcel side must fit its counterpart.
    pub fn fits(&self, size: Size) -> bool {
        self.sides_desc()
            .iter()
            .zip(size.inside_mm())
            .all(|(parcel, inside)| *parcel <= inside)
    }

    /// The smallest size the parcel fits in, after checking eligibility.
    pub fn smallest_size(&self) -> Result<Size, Ineligible> {
        self.check_eligible()?;
        Size::ALL
            .into_iter()
            .find(|size| self.fits(*size))
            .ok_or(Ineligible::TooBulky {
                sides_mm: self.sides_desc(),
            })
    }
}

#[cfg(test)]
mod tests;
