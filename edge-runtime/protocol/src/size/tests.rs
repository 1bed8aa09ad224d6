use super::*;
use proptest::prelude::*;

fn parcel(l: u32, w: u32, h: u32, g: u32) -> ParcelSpec {
    ParcelSpec {
        length_mm: l,
        width_mm: w,
        height_mm: h,
        weight_g: g,
    }
}

#[test]
fn a_book_fits_small() {
    assert_eq!(parcel(240, 170, 40, 600).smallest_size(), Ok(Size::Small));
}

#[test]
fn orientation_does_not_matter() {
    assert_eq!(parcel(180, 350, 300, 1).smallest_size(), Ok(Size::Small));
    assert_eq!(parcel(300, 180, 350, 1).smallest_size(), Ok(Size::Small));
}

#[test]
fn each_size_is_chosen_when_the_smaller_one_is_too_small() {
    assert_eq!(parcel(351, 10, 10, 1).smallest_size(), Ok(Size::Medium));
    assert_eq!(parcel(480, 350, 301, 1).smallest_size(), Ok(Size::Large));
    assert_eq!(
        parcel(470, 451, 100, 1).smallest_size(),
        Ok(Size::Oversized)
    );
}

#[test]
fn the_side_limit_is_19_inches() {
    assert_eq!(parcel(482, 10, 10, 1).check_eligible(), Ok(()));
    assert_eq!(
        parcel(10, 483, 10, 1).check_eligible(),
        Err(Ineligible::SideTooLong { side_mm: 483 })
    );
}

#[test]
fn the_weight_must_be_under_35_pounds() {
    assert_eq!(parcel(10, 10, 10, 15_875).check_eligible(), Ok(()));
    assert_eq!(
        parcel(10, 10, 10, 15_876).check_eligible(),
        Err(Ineligible::TooHeavy { weight_g: 15_876 })
    );
}

#[test]
fn zero_dimensions_are_refused_by_name() {
    assert_eq!(
        parcel(10, 0, 10, 1).check_eligible(),
        Err(Ineligible::Zero { field: "width_mm" })
    );
}

#[test]
fn an_eligible_cube_too_bulky_for_every_compartment_is_refused_as_such() {
    assert_eq!(
        parcel(482, 482, 482, 1).smallest_size(),
        Err(Ineligible::TooBulky {
            sides_mm: [482, 482, 482]
        })
    );
}

#[test]
fn sizes_parse_from_their_names() {
    for size in Size::ALL {
        assert_eq!(size.as_str().parse::<Size>(), Ok(size));
    }
    assert!("huge".parse::<Size>().is_err());
}

proptest! {
    #[test]
    fn every_eligible_parcel_fits_its_smallest_size_and_no_smaller(
        l in 1u32..=482, w in 1u32..=482, h in 1u32..=482, g in 1u32..15_876
    ) {
        let p = parcel(l, w, h, g);
        match p.smallest_size() {
            Ok(size) => {
                prop_assert!(p.fits(size));
                for smaller in Size::ALL.into_iter().filter(|s| *s < size) {
                    prop_assert!(!p.fits(smaller));
                }
            }
            Err(e) => {
                prop_assert!(matches!(e, Ineligible::TooBulky { .. }), "{:?}", e);
                prop_assert!(!p.fits(Size::Oversized));
            }
        }
    }
}
